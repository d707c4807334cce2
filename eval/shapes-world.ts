// A procedural renderer of shapes-clip's world (models/checkpoints/shapes-clip/README.md):
// coloured shapes on plain, gradient, striped, checkered or noisy backgrounds, with a
// per-pixel ground-truth mask and a caption. Our own code; seeded and deterministic.
//
// Style 'world' (the default) matches the labelled sample of the world shapes-clip was trained
// on (shared/data/shapes-world-sample, measured by test/shapes-world.test.ts): its colours,
// sizes, shape proportions and rotations, and muted backgrounds (stripes at any angle, colour
// noise). Style 'flat' is the earlier look (saturated backgrounds, horizontal or vertical
// patterns, no rotation, other proportions): off the model's domain on purpose, the stand-in
// for what a text-to-image model's pictures are to a CLIP trained on photos.
import type { RgbImage } from '../core/image.js';

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'cross', 'ring', 'heart', 'diamond'] as const;
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black'] as const;
export const BACKGROUNDS = ['plain', 'gradient', 'striped', 'checkered', 'noisy'] as const;
export const SIZES = ['small', 'large'] as const;
/** Colour–shape pairs that never appeared in shapes-clip's training captions. */
export const UNSEEN_PAIRS = ['purple heart', 'orange ring', 'white diamond', 'green star', 'black triangle', 'yellow cross'];

export type Shape = (typeof SHAPES)[number];
export type Colour = (typeof COLOURS)[number];
export type Background = (typeof BACKGROUNDS)[number];
export type Size = (typeof SIZES)[number];

/** The world's object colours (the sample's index.json). */
const RGB: Record<Colour, [number, number, number]> = {
  red: [215, 35, 35],
  green: [35, 165, 50],
  blue: [35, 70, 215],
  yellow: [240, 215, 35],
  purple: [135, 45, 185],
  orange: [250, 135, 25],
  white: [245, 245, 245],
  black: [18, 18, 18],
};

export const RENDER_STYLES = ['world', 'flat'] as const;
export type RenderStyle = (typeof RENDER_STYLES)[number];

export interface ObjectSpec {
  shape: Shape;
  colour: Colour;
  size: Size;
}

export interface SceneSpec {
  objects: ObjectSpec[];
  background?: Background;
}

export interface Scene {
  image: RgbImage;
  /** Per pixel: 0 = background, k = k-th object (1-based), later objects on top. */
  mask: Uint8Array;
  objects: ObjectSpec[];
  background: Background;
  caption: string;
  /** Each object's radius in pixels. */
  radii: number[];
}

/** mulberry32 */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STAR: [number, number][] = Array.from({ length: 10 }, (_, i) => {
  const r = i % 2 === 0 ? 1 : 0.42, a = -Math.PI / 2 + (i * Math.PI) / 5;
  return [r * Math.cos(a), r * Math.sin(a) + 0.08];
});

function inPolygon(x: number, y: number, poly: [number, number][]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i]!, [xj, yj] = poly[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** The classic parametric heart (x = 16 sin³t, y = 13 cos t − 5 cos 2t − 2 cos 3t − cos 4t), 0.95 wide, centred on its centroid. */
const HEART: [number, number][] = (() => {
  const pts = Array.from({ length: 120 }, (_, i) => {
    const t = (i / 120) * 2 * Math.PI;
    return [16 * Math.sin(t) ** 3, -(13 * Math.cos(t) - 5 * Math.cos(2 * t) - 2 * Math.cos(3 * t) - Math.cos(4 * t))] as [number, number];
  });
  let a = 0, cx = 0, cy = 0;
  pts.forEach(([x0, y0], i) => {
    const [x1, y1] = pts[(i + 1) % pts.length]!, cross = x0 * y1 - x1 * y0;
    a += cross / 2, cx += ((x0 + x1) * cross) / 6, cy += ((y0 + y1) * cross) / 6;
  });
  // Its centroid 0.1 r below the object's centre, as in the sample.
  return pts.map(([x, y]) => [((x - cx / a) * 0.95) / 16, ((y - cy / a) * 0.95) / 16 + 0.1]);
})();

/** Regular star polygon: `points` tips at radius 1, inner vertices at `inner`, a tip up. */
function starPolygon(points: number, inner: number): [number, number][] {
  return Array.from({ length: 2 * points }, (_, i) => {
    const r = i % 2 === 0 ? 1 : inner, a = -Math.PI / 2 + (i * Math.PI) / points;
    return [r * Math.cos(a), r * Math.sin(a)];
  });
}
const WORLD_STAR = starPolygon(5, 0.43);
/** Equilateral, circumradius r, its centre 0.12 r below the object's (fitted to the sample's masks: IoU 0.96). */
const TRIANGLE: [number, number][] = [[0, -0.88], [0.866, 0.62], [-0.866, 0.62]];

/**
 * Whether (u,v), in units of the object's radius around its centre (v down), is inside. 'world':
 * the proportions measured on the sample (fill of the circle of radius r: square 0.97, triangle
 * 0.43, star 0.41, cross 0.69, ring 0.72, heart 0.64, diamond 0.41).
 */
export function inside(shape: Shape, u: number, v: number, style: RenderStyle = 'world'): boolean {
  if (style === 'flat') return insideFlat(shape, u, v);
  switch (shape) {
    case 'circle': return u * u + v * v <= 1;
    case 'square': return Math.abs(u) <= 0.875 && Math.abs(v) <= 0.875;
    case 'triangle': return inPolygon(u, v, TRIANGLE);
    case 'star': return inPolygon(u, v, WORLD_STAR);
    case 'cross': return (Math.abs(u) <= 0.34 && Math.abs(v) <= 0.95) || (Math.abs(v) <= 0.34 && Math.abs(u) <= 0.95);
    case 'ring': { const r2 = u * u + v * v; return r2 <= 1 && r2 >= 0.3; }
    case 'heart': return inPolygon(u, v, HEART);
    case 'diamond': return Math.abs(u) / 0.64 + Math.abs(v) <= 1;
  }
}

/**
 * Rotation of each shape in the world, uniform in [from, to] radians: the range of the angles that
 * best fit the sample's masks (each object's template rotated until its IoU with the mask peaks).
 */
const DEG = Math.PI / 180;
const ROTATION: Record<Shape, [number, number]> = { circle: [0, 0], square: [-15 * DEG, 15 * DEG], triangle: [-28 * DEG, 28 * DEG], star: [-36 * DEG, 36 * DEG], cross: [-22 * DEG, 22 * DEG], ring: [0, 0], heart: [-20 * DEG, 20 * DEG], diamond: [-12 * DEG, 12 * DEG] };

/** The earlier look's proportions (style 'flat'). */
function insideFlat(shape: Shape, u: number, v: number): boolean {
  switch (shape) {
    case 'circle': return u * u + v * v <= 1;
    case 'square': return Math.abs(u) <= 0.82 && Math.abs(v) <= 0.82;
    case 'triangle': return v >= -0.9 && v <= 0.8 && Math.abs(u) <= ((v + 0.9) / 1.7) * 0.98;
    case 'star': return inPolygon(u, v, STAR);
    case 'cross': return (Math.abs(u) <= 0.3 && Math.abs(v) <= 0.95) || (Math.abs(v) <= 0.3 && Math.abs(u) <= 0.95);
    case 'ring': { const r2 = u * u + v * v; return r2 <= 1 && r2 >= 0.3; }
    case 'heart': { const x = u * 1.15, y = -v * 1.15 + 0.25; const a = x * x + y * y - 1; return a * a * a - x * x * y * y * y <= 0; }
    case 'diamond': return Math.abs(u) / 0.8 + Math.abs(v) <= 1;
  }
}

function backgroundColour(rand: () => number, avoid: Colour[], style: RenderStyle): [number, number, number] {
  for (;;) {
    // world: muted — a grey of 90..175 with a tint of ±18 per channel (the sample's chroma ≈ 20);
    // flat: any mid colour.
    const grey = 90 + rand() * 85;
    const c = (style === 'world' ? [0, 1, 2].map(() => grey + (rand() - 0.5) * 36) : [70 + rand() * 120, 70 + rand() * 120, 70 + rand() * 120]).map(Math.round) as [number, number, number];
    if (avoid.every((o) => RGB[o].reduce((s, v, i) => s + Math.abs(v - c[i]!), 0) > 120)) return c;
  }
}

/**
 * The two colours of a two-colour background. world: one base grey (132 ± 17, the sample's spread
 * between images) split ~46 levels apart, each with its own tint; flat: two unrelated colours.
 */
function twoColours(rand: () => number, avoid: Colour[], style: RenderStyle): [[number, number, number], [number, number, number]] {
  if (style === 'flat') return [backgroundColour(rand, avoid, style), backgroundColour(rand, avoid, style)];
  for (;;) {
    const base = 132 + 17 * gaussian(rand), half = 17 + rand() * 12;
    const tint = () => (rand() - 0.5) * 30;
    const pair = [-1, 1].map((sign) => [0, 1, 2].map(() => Math.max(0, Math.min(255, Math.round(base + sign * half + tint()))))) as [[number, number, number], [number, number, number]];
    if (pair.every((c) => avoid.every((o) => RGB[o].reduce((s, v, i) => s + Math.abs(v - c[i]!), 0) > 120))) return pair;
  }
}

/** A standard normal deviate (Box–Muller). */
function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function paintBackground(data: Uint8Array, size: number, background: Background, rand: () => number, colours: Colour[], style: RenderStyle): void {
  const [c1, c2] = background === 'plain' || background === 'noisy' ? [backgroundColour(rand, colours, style), [0, 0, 0] as [number, number, number]] : twoColours(rand, colours, style);
  const scale = size / 64;
  // flat: horizontal or vertical patterns; world: stripes and gradients at any angle, checks of 3-8 px.
  const angle = style === 'world' ? rand() * Math.PI : rand() < 0.5 ? 0 : Math.PI / 2;
  const period = style === 'world' ? 5 + rand() * 9 : 6 + Math.floor(rand() * 6), cell = style === 'world' ? 4 + Math.floor(rand() * 6) : period / 2;
  const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let c = c1;
      const gx = x / scale, gy = y / scale, along = gx * dx + gy * dy;
      if (background === 'gradient') {
        const t = style === 'world' ? Math.min(1, Math.max(0, 0.5 + (along - 31.5 * (dx + dy)) / 90)) : (angle ? gy : gx) / 63;
        c = [0, 1, 2].map((i) => Math.round(c1[i]! * (1 - t) + c2[i]! * t)) as [number, number, number];
      } else if (background === 'striped') c = Math.floor((style === 'world' ? along : angle ? gy : gx) / (period / 2)) % 2 ? c2 : c1;
      else if (background === 'checkered') c = (Math.floor(gx / cell) + Math.floor(gy / cell)) % 2 ? c2 : c1;
      else if (background === 'noisy') {
        // world: colour noise, each channel on its own (σ ≈ 25); flat: one grey offset for all three.
        const grey = (rand() - 0.5) * 80;
        c = [0, 1, 2].map((i) => Math.max(0, Math.min(255, Math.round(c1[i]! + (style === 'world' ? 25 * gaussian(rand) : grey))))) as [number, number, number];
      }
      data.set(c, (y * size + x) * 3);
    }
  }
}

export function caption(objects: ObjectSpec[], background: Background, withDetail: boolean): string {
  const names = objects.map((o) => `${withDetail ? `${o.size} ` : ''}${o.colour} ${o.shape}`);
  if (names.length === 0) return `a photo of a ${background} background.`;
  return `a photo of a ${names.join(' and a ')}${withDetail ? ` on a ${background} background` : ''}.`;
}

/** Renders a scene at `size`×`size` (the world is 64 px). Object positions avoid heavy overlap. */
export function renderScene(spec: SceneSpec, seed: number, size = 64, style: RenderStyle = 'world'): Scene {
  const rand = rng(seed);
  const background = spec.background ?? BACKGROUNDS[Math.floor(rand() * BACKGROUNDS.length)]!;
  const data = new Uint8Array(size * size * 3);
  paintBackground(data, size, background, rand, spec.objects.map((o) => o.colour), style);
  const scale = size / 64;
  const mask = new Uint8Array(size * size);
  const placed: { cx: number; cy: number; r: number }[] = [];
  spec.objects.forEach((o, k) => {
    // Radii of the world: small 8–10.5 px, large 14–18 px.
    const r = (style === 'world' ? (o.size === 'large' ? 14 + rand() * 4 : 8 + rand() * 2.5) : o.size === 'large' ? 14 + rand() * 5 : 8 + rand() * 3) * scale;
    const [from, to] = ROTATION[o.shape];
    const turn = style === 'world' ? from + rand() * (to - from) : 0, [cos, sin] = [Math.cos(turn), Math.sin(turn)];
    const at = (u: number, v: number) => inside(o.shape, cos * u + sin * v, -sin * u + cos * v, style);
    let cx = 0, cy = 0;
    for (let attempt = 0; attempt < 50; attempt++) {
      cx = r + 1 + rand() * (size - 2 * r - 2);
      cy = r + 1 + rand() * (size - 2 * r - 2);
      if (placed.every((p) => Math.hypot(p.cx - cx, p.cy - cy) > 0.8 * (p.r + r))) break;
    }
    placed.push({ cx, cy, r });
    // world: each object's colour jittered around its name's (σ ≈ 11 per channel, as the sample).
    const rgb = style === 'world' ? RGB[o.colour].map((v) => Math.max(0, Math.min(255, v + 11 * gaussian(rand)))) : RGB[o.colour];
    for (let y = Math.max(0, Math.floor(cy - r - 1)); y < Math.min(size, Math.ceil(cy + r + 1)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r - 1)); x < Math.min(size, Math.ceil(cx + r + 1)); x++) {
        // 3x3 supersampling for smooth edges; the mask takes the pixel centre.
        let cover = 0;
        for (let sy = 0; sy < 3; sy++) for (let sx = 0; sx < 3; sx++) if (at((x + (sx + 0.5) / 3 - cx) / r, (y + (sy + 0.5) / 3 - cy) / r)) cover++;
        if (cover === 0) continue;
        const a = cover / 9, p = (y * size + x) * 3;
        for (let i = 0; i < 3; i++) data[p + i] = Math.round(data[p + i]! * (1 - a) + rgb[i]! * a);
        if (at((x + 0.5 - cx) / r, (y + 0.5 - cy) / r)) mask[y * size + x] = k + 1;
      }
    }
  });
  return { image: { width: size, height: size, data }, mask, objects: spec.objects, background, caption: caption(spec.objects, background, false), radii: placed.map((p) => p.r) };
}

/**
 * A shape and colour as the world's scenes have them: what is not given is drawn, never making one
 * of the six pairs shapes-clip was not trained on (UNSEEN_PAIRS; the sample has none of them
 * either, and the eval measures them apart). Given both, they are kept.
 */
function worldPair(rand: () => number, shape?: Shape, colour?: Colour): { shape: Shape; colour: Colour } {
  for (;;) {
    const s = shape ?? SHAPES[Math.floor(rand() * SHAPES.length)]!, c = colour ?? COLOURS[Math.floor(rand() * COLOURS.length)]!;
    if ((shape && colour) || !UNSEEN_PAIRS.includes(`${c} ${s}`)) return { shape: s, colour: c };
  }
}

/** A random scene of the world with 1..maxObjects objects. */
export function randomScene(seed: number, maxObjects = 1, size = 64, style: RenderStyle = 'world'): Scene {
  const rand = rng(seed ^ 0x9e3779b9);
  const n = 1 + Math.floor(rand() * maxObjects);
  const objects = Array.from({ length: n }, () => ({ ...worldPair(rand), size: SIZES[Math.floor(rand() * SIZES.length)]! }));
  return renderScene({ objects }, seed, size, style);
}

export class PromptError extends Error {}

/**
 * Parses what SuS-style prompts say ("A photo of a red star.", "a large blue ring on a
 * striped background", "a red circle and a green square") into a scene. Missing colour
 * or shape is drawn at random; a prompt naming neither cannot be drawn.
 */
export function parsePrompt(prompt: string, seed: number): SceneSpec {
  const words = prompt.toLowerCase().replace(/[^a-z\s]/g, ' ').split(/\s+/).filter(Boolean);
  const rand = rng(seed ^ 0x5bd1e995);
  const background = BACKGROUNDS.find((b) => words.includes(b));
  const objects: ObjectSpec[] = [];
  let current: Partial<ObjectSpec> = {};
  // A pair the prompt names is drawn even if shapes-clip never saw it; what it leaves out, as the world's.
  const flush = () => {
    if (current.shape || current.colour) objects.push({ ...worldPair(rand, current.shape, current.colour), size: current.size ?? SIZES[Math.floor(rand() * SIZES.length)]! });
    current = {};
  };
  for (const word of words) {
    const singular = word.endsWith('s') && SHAPES.includes(word.slice(0, -1) as Shape) ? word.slice(0, -1) : word;
    if (word === 'and' || word === 'with') flush();
    else if (SIZES.includes(word as Size)) current.size = word as Size;
    else if (COLOURS.includes(word as Colour)) {
      if (current.colour) flush();
      current.colour = word as Colour;
    } else if (SHAPES.includes(singular as Shape)) {
      if (current.shape) flush();
      current.shape = singular as Shape;
      flush();
    }
  }
  flush();
  // "a background", "a striped background", "empty", "uniform": an empty scene of the world.
  const kind = background ?? (words.includes('checkerboard') ? 'checkered' : words.includes('uniform') ? 'plain' : undefined);
  if (objects.length === 0 && (words.includes('background') || words.includes('empty') || kind)) return { objects: [], background: kind };
  if (objects.length === 0) {
    throw new PromptError(`cannot draw "${prompt}": this world has only the shapes ${SHAPES.join(', ')} in ${COLOURS.join(', ')}`);
  }
  if (objects.length > 3) throw new PromptError(`cannot draw "${prompt}": at most 3 objects per image`);
  return { objects, background };
}
