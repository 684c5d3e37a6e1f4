/**
 * Map panel: a 2-D PCA projection of the collection in the active version (the projection route),
 * coloured by a metadata field, with the selected item and its neighbours marked.
 */
import { api, type Point, type Projection } from '../api';
import { byId, count, fill, h, pct } from '../dom';
import { MapView } from '../map-view';
import { describe, notify } from '../notice';
import { activeVersion, state } from '../state';

export interface MapDeps {
  /** A point was clicked. */
  select(id: string): void;
  /** The collection's metadata fields, as the projection reports them (for the search-field select). */
  fields(fields: string[]): void;
}

const LABEL_FIELDS = ['name', 'title', 'label'];
const COLOUR_HINT = /genre|tag|categor|type|kind|cluster|country|style|group/i;

export function createMap(deps: MapDeps) {
  const el = {
    colour: byId<HTMLSelectElement>('colour'),
    sample: byId<HTMLSelectElement>('sample'),
    caption: byId('map-caption'),
  };
  const view = new MapView(
    byId<HTMLCanvasElement>('map'),
    (id) => deps.select(id),
    (p) => fill(byId('map-hover'), p ? `${p.label ?? p.id}${p.label ? ` (${p.id})` : ''}` : ''),
  );
  let seq = 0;
  let projection: Projection | undefined;
  let colour: string | undefined;
  let colourChosen = false;
  /** The metadata fields of the collection the map last showed, to ask for exactly the fields it needs. */
  let mapFields: { key: string; fields: string[] } | undefined;

  async function load(): Promise<void> {
    const { space, collection } = state;
    const active = activeVersion();
    if (!space || !collection || !active) return;
    const mine = ++seq;
    const key = `${space}/${active}/${collection}`;
    const sample = Number(el.sample.value);
    const wanted = (all: string[]) => [
      ...all.filter((f) => LABEL_FIELDS.includes(f)),
      ...(colour && all.includes(colour) ? [colour] : []),
    ];
    fill(el.caption, `Projecting ${collection} of ${active}…`);
    try {
      const known = mapFields?.key === key ? mapFields.fields : undefined;
      let p = await api.projection(space, collection, {
        sample,
        version: active,
        ...(known ? { fields: wanted(known) } : {}),
      });
      if (mine !== seq) return;
      mapFields = { key, fields: p.metadataFields };
      deps.fields(p.metadataFields);
      // Any field but the label can colour the map; arrays (e.g. tags) by their first value.
      const choices = p.metadataFields.filter((f) => !LABEL_FIELDS.includes(f));
      if (colour && !choices.includes(colour)) colour = undefined;
      if (!colourChosen) colour = choices.find((f) => COLOUR_HINT.test(f));
      if (colour && !p.fields.includes(colour)) {
        p = await api.projection(space, collection, {
          sample,
          version: active,
          fields: wanted(p.metadataFields),
        });
        if (mine !== seq) return;
      }
      projection = p;
      fill(
        el.colour,
        h('option', { value: '', selected: !colour }, 'nothing'),
        choices.map((f) => h('option', { value: f, selected: f === colour }, f)),
      );
      view.show(p.points ?? [], colour);
      fill(
        el.caption,
        `${count(p.sample)} of ${count(p.count)} ${collection} in ${p.version}, by PCA: the two axes hold ${pct(p.explained[0] ?? 0)} and ${pct(p.explained[1] ?? 0)} of the variance.`,
        colour ? ` Coloured by ${colour} (its nine most frequent values; a list by its first value).` : '',
        ' Hover a point to name it; click it to select it.',
      );
      await mark();
    } catch (err) {
      if (mine === seq) fill(el.caption, h('span', { class: 'error' }, describe(err)));
    }
  }

  /** Marks state.item and its neighbours (state.active) on the map. */
  async function mark(): Promise<void> {
    const { space, collection, item } = state;
    const active = activeVersion();
    if (!space || !collection || !projection || projection.collection !== collection || !active) return;
    if (!item || item.collection !== collection) {
      view.mark(undefined, []);
      return;
    }
    const neighbours = state.active ?? [];
    const mine = seq;
    try {
      const p = await api.projection(space, collection, {
        sample: Number(el.sample.value),
        ids: [item.id, ...neighbours],
        points: false,
        fields: projection.metadataFields.filter((f) => LABEL_FIELDS.includes(f)),
        version: active,
      });
      if (mine !== seq) return;
      const extra = p.extra ?? [];
      const selected = extra.find((x) => x.id === item.id);
      view.mark(
        selected,
        extra.filter((x: Point) => x.id !== item.id),
      );
    } catch (err) {
      notify(describe(err), 'error');
    }
  }

  el.colour.addEventListener('change', () => {
    colour = el.colour.value || undefined;
    colourChosen = true;
    void load();
  });
  el.sample.addEventListener('change', () => void load());

  return {
    load,
    mark,
    /** Another collection: colour by a suggested field again until the user picks one. */
    resetColour(): void {
      colourChosen = false;
    },
  };
}
