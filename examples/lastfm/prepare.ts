/**
 * Regenerates the trimmed demo files in this folder from the HetRec 2011 Last.fm data
 * (hetrec2011-lastfm-2k): `npx tsx examples/lastfm/prepare.ts [sourceDir]`, where sourceDir
 * defaults to ../shared/datasets/lastfm-2k next to the repository.
 *
 * - readme.txt: the dataset's readme (its licence and citation), re-encoded from ISO-8859-1 to UTF-8.
 * - user_artists.dat: copied unchanged (userID, artistID, weight = play count).
 * - artists.dat: only the id and name columns (UTF-8), header `id\tname`.
 * - artist_tags.tsv: `artistID\ttag1|tag2|tag3`, the three tags most often assigned to the artist
 *   in user_taggedartists.dat (ties: alphabetical), for artists that appear in user_artists.dat.
 *   tags.dat is ISO-8859-1, so it is decoded as latin1; the output is UTF-8.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TOP_TAGS = 3;

function rows(text: string): string[][] {
  return text
    .split(/\r?\n/)
    .slice(1)
    .filter((l) => l.trim() !== '')
    .map((l) => l.split('\t'));
}

export function prepareLastfm(sourceDir: string, outDir: string): void {
  writeFileSync(join(outDir, 'readme.txt'), readFileSync(join(sourceDir, 'readme.txt'), 'latin1'));
  const plays = readFileSync(join(sourceDir, 'user_artists.dat'), 'utf8');
  writeFileSync(join(outDir, 'user_artists.dat'), plays);
  const played = new Set(rows(plays).map((r) => r[1]!));

  const artists = rows(readFileSync(join(sourceDir, 'artists.dat'), 'utf8'));
  writeFileSync(
    join(outDir, 'artists.dat'),
    ['id\tname', ...artists.map((r) => `${r[0]}\t${(r[1] ?? '').trim()}`)].join('\n') + '\n',
  );

  const tagNames = new Map<string, string>();
  for (const [id, value] of rows(readFileSync(join(sourceDir, 'tags.dat'), 'latin1'))) {
    const tag = (value ?? '').trim().replace(/[|\t]/g, ' ');
    if (id !== undefined && tag !== '') tagNames.set(id, tag);
  }
  const counts = new Map<string, Map<string, number>>();
  for (const r of rows(readFileSync(join(sourceDir, 'user_taggedartists.dat'), 'utf8'))) {
    const artist = r[1]!;
    const tag = tagNames.get(r[2]!);
    if (tag === undefined || !played.has(artist)) continue;
    let perArtist = counts.get(artist);
    if (perArtist === undefined) {
      perArtist = new Map();
      counts.set(artist, perArtist);
    }
    perArtist.set(tag, (perArtist.get(tag) ?? 0) + 1);
  }
  const lines = ['artistID\ttags'];
  const ids = [...counts.keys()].sort((a, b) => Number(a) - Number(b));
  for (const id of ids) {
    const top = [...counts.get(id)!]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, TOP_TAGS)
      .map(([tag]) => tag);
    lines.push(`${id}\t${top.join('|')}`);
  }
  writeFileSync(join(outDir, 'artist_tags.tsv'), lines.join('\n') + '\n');
}

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const source = resolve(process.argv[2] ?? join(here, '../../../shared/datasets/lastfm-2k'));
  prepareLastfm(source, here);
  console.log(`wrote readme.txt, user_artists.dat, artists.dat, artist_tags.tsv to ${here} from ${source}`);
}
