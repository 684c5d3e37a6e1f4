/**
 * What the explore routes run, loaded by them on first use (`import('./maths')`): the explorer is a
 * page's tool, so a query instance that never serves it never evaluates the maths.
 */
export { project, unitIfCosine } from './pca';
export { PrefixIndexes } from './prefix-index';
export {
  fitRows,
  Projections,
  pickFields,
  SlotFits,
  sampleSize,
  scalarFields,
  scalarFieldsOf,
} from './projection';
export { flatOf, idHash, refOf, sampleByHash } from './sampling';
