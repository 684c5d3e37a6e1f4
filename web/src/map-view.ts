/**
 * The map: a 2-D PCA projection (computed by the API's projection route) drawn with Chart.js's
 * scatter chart on a canvas, coloured by a metadata field, with the selected item and its
 * neighbours highlighted on top.
 */
import {
  Chart,
  type ChartDataset,
  type ChartEvent,
  Legend,
  LinearScale,
  PointElement,
  ScatterController,
  Tooltip,
  type TooltipItem,
} from 'chart.js';
import { labelOf, type Point } from './api';

Chart.register(ScatterController, LinearScale, PointElement, Tooltip, Legend);

export interface MapPoint {
  x: number;
  y: number;
  id: string;
  label?: string;
}

type Scatter = Chart<'scatter', MapPoint[], unknown>;
type Dataset = ChartDataset<'scatter', MapPoint[]>;

/** Tableau 10, then grey for everything else. */
const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
];
const OTHER = '#a0a0a0';
const MAX_CATEGORIES = PALETTE.length;

function withAlpha(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

function categoryOf(v: unknown): string | number | undefined {
  const x = Array.isArray(v) ? v[0] : v;
  if (typeof x === 'string' || typeof x === 'boolean') return String(x);
  if (typeof x === 'number' && Number.isFinite(x)) return x;
  return undefined;
}

/** Groups points by a field: the most frequent values get a colour each, numbers go in quantile bins. */
export function groupPoints(
  points: readonly Point[],
  field: string | undefined,
): { label: string; colour: string; points: MapPoint[] }[] {
  const toMap = (p: Point): MapPoint => {
    const label = labelOf(p.metadata ?? null);
    return { x: p.x, y: p.y, id: p.id, ...(label ? { label } : {}) };
  };
  if (!field) return [{ label: 'items', colour: PALETTE[0] as string, points: points.map(toMap) }];
  const values = points.map((p) => categoryOf(p.metadata?.[field]));
  const numeric = values.every((v) => v === undefined || typeof v === 'number');
  let key: (v: string | number | undefined) => string;
  let order: string[];
  if (numeric) {
    const sorted = (values.filter((v) => v !== undefined) as number[]).sort((a, b) => a - b);
    const distinct = new Set(sorted);
    if (distinct.size <= MAX_CATEGORIES) {
      order = [...distinct].map(String);
      key = (v) => (v === undefined ? 'none' : String(v));
    } else {
      const bins = 5;
      const cuts = Array.from(
        { length: bins - 1 },
        (_, i) => sorted[Math.floor(((i + 1) * sorted.length) / bins)] as number,
      );
      const edges = [sorted[0] as number, ...cuts, sorted[sorted.length - 1] as number];
      const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toPrecision(3));
      order = Array.from(
        { length: bins },
        (_, i) => `${fmt(edges[i] as number)}–${fmt(edges[i + 1] as number)}`,
      );
      key = (v) => {
        if (v === undefined) return 'none';
        let i = 0;
        while (i < cuts.length && (v as number) >= (cuts[i] as number)) i++;
        return order[i] as string;
      };
    }
  } else {
    const freq = new Map<string, number>();
    for (const v of values) if (v !== undefined) freq.set(String(v), (freq.get(String(v)) ?? 0) + 1);
    order = [...freq.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, MAX_CATEGORIES)
      .map(([v]) => v);
    const top = new Set(order);
    key = (v) => (v === undefined ? 'none' : top.has(String(v)) ? String(v) : 'other');
  }
  const groups = new Map<string, MapPoint[]>();
  points.forEach((p, i) => {
    const k = key(values[i]);
    groups.set(k, [...(groups.get(k) ?? []), toMap(p)]);
  });
  const out = order
    .filter((k) => groups.has(k))
    .map((k, i) => ({ label: k, colour: PALETTE[i % PALETTE.length] as string, points: groups.get(k)! }));
  for (const extra of ['other', 'none']) {
    if (groups.has(extra)) out.push({ label: extra, colour: OTHER, points: groups.get(extra)! });
  }
  return out;
}

export class MapView {
  private chart: Scatter | undefined;
  private groups: { label: string; colour: string; points: MapPoint[] }[] = [];
  private highlight: { selected?: MapPoint; neighbours: MapPoint[] } = { neighbours: [] };
  private legendColours: string[] = [];

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly onPick: (id: string) => void,
    private readonly onPoint: (p: MapPoint | undefined) => void = () => undefined,
  ) {}

  /** Draws a new set of points, coloured by `field`. */
  show(points: readonly Point[], field: string | undefined): void {
    this.groups = groupPoints(points, field);
    this.render();
  }

  /** Marks the selected item and its neighbours (points projected on the same axes), or clears. */
  mark(selected: Point | undefined, neighbours: readonly Point[]): void {
    const toMap = (p: Point): MapPoint => {
      const label = labelOf(p.metadata ?? null);
      return { x: p.x, y: p.y, id: p.id, ...(label ? { label } : {}) };
    };
    this.highlight = {
      ...(selected ? { selected: toMap(selected) } : {}),
      neighbours: neighbours.map(toMap),
    };
    this.render();
  }

  private datasets(): Dataset[] {
    const marking = this.highlight.selected !== undefined;
    this.legendColours = this.groups.map((g) => withAlpha(g.colour, 0.9));
    const base: Dataset[] = this.groups.map((g) => ({
      label: g.label,
      data: g.points,
      backgroundColor: withAlpha(g.colour, marking ? 0.22 : 0.75),
      borderWidth: 0,
      pointRadius: 2.5,
      pointHoverRadius: 5,
      order: 2,
    }));
    const hl: Dataset[] = [];
    if (this.highlight.neighbours.length) {
      hl.push({
        label: 'neighbours',
        data: this.highlight.neighbours,
        backgroundColor: '#ffffff',
        borderColor: '#111111',
        borderWidth: 2,
        pointRadius: 5,
        pointHoverRadius: 7,
        order: 1,
      });
    }
    if (this.highlight.selected) {
      hl.push({
        label: 'selected',
        data: [this.highlight.selected],
        backgroundColor: '#111111',
        borderColor: '#ffffff',
        borderWidth: 2,
        pointStyle: 'rectRot',
        pointRadius: 9,
        pointHoverRadius: 11,
        order: 0,
      });
    }
    return [...base, ...hl];
  }

  private render(): void {
    const datasets = this.datasets();
    if (!this.chart) {
      this.chart = new Chart<'scatter', MapPoint[], unknown>(this.canvas, {
        type: 'scatter',
        data: { datasets },
        options: {
          animation: false,
          parsing: false,
          normalized: true,
          responsive: true,
          maintainAspectRatio: false,
          interaction: { mode: 'nearest', intersect: true },
          scales: {
            x: { type: 'linear', title: { display: true, text: 'PC 1' } },
            y: { type: 'linear', title: { display: true, text: 'PC 2' } },
          },
          plugins: {
            legend: {
              position: 'bottom',
              labels: {
                boxWidth: 10,
                boxHeight: 10,
                // The legend keeps each group's full colour while the map dims it behind a selection.
                generateLabels: (chart) =>
                  Chart.defaults.plugins.legend.labels.generateLabels(chart).map((l) => {
                    const full = this.legendColours[l.datasetIndex ?? -1];
                    return full ? { ...l, fillStyle: full, strokeStyle: full } : l;
                  }),
              },
            },
            tooltip: {
              callbacks: {
                label: (ctx: TooltipItem<'scatter'>) => {
                  const p = ctx.raw as MapPoint;
                  return p.label ? `${p.label} (${p.id})` : p.id;
                },
              },
            },
          },
          onClick: (_e: ChartEvent, elements) => {
            const el = elements[0];
            if (!el || !this.chart) return;
            const p = this.chart.data.datasets[el.datasetIndex]?.data[el.index];
            if (p) this.onPick(p.id);
          },
          onHover: (e: ChartEvent, elements) => {
            const target = e.native?.target as HTMLElement | undefined;
            if (target) target.style.cursor = elements.length ? 'pointer' : 'default';
            const el = elements[0];
            this.onPoint(
              el && this.chart ? this.chart.data.datasets[el.datasetIndex]?.data[el.index] : undefined,
            );
          },
        },
      });
    } else {
      this.chart.data.datasets = datasets;
      this.chart.update('none');
    }
    // For tests and assistive text: what is drawn.
    const drawn = this.groups.reduce((n, g) => n + g.points.length, 0);
    this.canvas.dataset.points = String(drawn);
    this.canvas.dataset.highlighted = String(
      this.highlight.neighbours.length + (this.highlight.selected ? 1 : 0),
    );
    this.canvas.dataset.selected = this.highlight.selected?.id ?? '';
    // Where the marked points landed (CSS pixels in the canvas), for tests that hover and click them.
    const marks = this.chart.data.datasets.flatMap((ds, di) =>
      ds.label === 'selected' || ds.label === 'neighbours'
        ? ds.data.map((p, i) => {
            const e = this.chart?.getDatasetMeta(di).data[i];
            return { id: p.id, kind: ds.label, x: Math.round(e?.x ?? -1), y: Math.round(e?.y ?? -1) };
          })
        : [],
    );
    this.canvas.dataset.marks = JSON.stringify(marks);
  }

  destroy(): void {
    this.chart?.destroy();
    this.chart = undefined;
  }
}
