// A procedural renderer of shapes-clip's world (models/checkpoints/shapes-clip/README.md):
// coloured shapes on plain, gradient, striped, checkered or noisy backgrounds, with a
// per-pixel ground-truth mask and a caption. Our own code; seeded and deterministic.
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

const RGB: Record<Colour, [number, number, number]> = {
  red: [220, 30, 30],
  green: [40, 170, 50],
  blue: [40, 70, 220],
  yellow: [240, 220, 40],
  purple: [140, 50, 180],
  orange: [245, 140, 30],
  white: [245, 245, 245],
  black: [20, 20, 20],
};

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

/** Whether (u,v), in units of the object's radius around its centre (v down), is inside. */
export function inside(shape: Shape, u: number, v: number): boolean {
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

function backgroundColour(rand: () => number, avoid: Colour[]): [number, number, number] {
  // Muted colours that keep objects visible: mid greys and pastels, never an object's exact colour.
  for (;;) {
    const c: [number, number, number] = [70 + rand() * 120, 70 + rand() * 120, 70 + rand() * 120].map(Math.round) as [number, number, number];
    if (avoid.every((o) => RGB[o].reduce((s, v, i) => s + Math.abs(v - c[i]!), 0) > 120)) return c;
  }
}

export function caption(objects: ObjectSpec[], background: Background, withDetail: boolean): string {
  const names = objects.map((o) => `${withDetail ? `${o.size} ` : ''}${o.colour} ${o.shape}`);
  if (names.length === 0) return `a photo of a ${background} background.`;
  return `a photo of a ${names.join(' and a ')}${withDetail ? ` on a ${background} background` : ''}.`;
}

/** Renders a scene at `size`×`size` (the world is 64 px). Object positions avoid heavy overlap. */
export function renderScene(spec: SceneSpec, seed: number, size = 64): Scene {
  const rand = rng(seed);
  const background = spec.background ?? BACKGROUNDS[Math.floor(rand() * BACKGROUNDS.length)]!;
  const colours = spec.objects.map((o) => o.colour);
  const c1 = backgroundColour(rand, colours), c2 = backgroundColour(rand, colours);
  const period = 6 + Math.floor(rand() * 6), angle = rand() < 0.5;
  const data = new Uint8Array(size * size * 3);
  const scale = size / 64;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let c = c1;
      const gx = x / scale, gy = y / scale;
      if (background === 'gradient') {
        const t = angle ? gx / 63 : gy / 63;
        c = [0, 1, 2].map((i) => Math.round(c1[i]! * (1 - t) + c2[i]! * t)) as [number, number, number];
      } else if (background === 'striped') c = Math.floor((angle ? gx : gy) / (period / 2)) % 2 ? c2 : c1;
      else if (background === 'checkered') c = (Math.floor(gx / (period / 2)) + Math.floor(gy / (period / 2))) % 2 ? c2 : c1;
      else if (background === 'noisy') {
        const n = (rand() - 0.5) * 80;
        c = [0, 1, 2].map((i) => Math.max(0, Math.min(255, Math.round(c1[i]! + n)))) as [number, number, number];
      }
      data.set(c, (y * size + x) * 3);
    }
  }
  const mask = new Uint8Array(size * size);
  const placed: { cx: number; cy: number; r: number }[] = [];
  spec.objects.forEach((o, k) => {
    const r = (o.size === 'large' ? 14 + rand() * 5 : 8 + rand() * 3) * scale;
    let cx = 0, cy = 0;
    for (let attempt = 0; attempt < 50; attempt++) {
      cx = r + 1 + rand() * (size - 2 * r - 2);
      cy = r + 1 + rand() * (size - 2 * r - 2);
      if (placed.every((p) => Math.hypot(p.cx - cx, p.cy - cy) > 0.8 * (p.r + r))) break;
    }
    placed.push({ cx, cy, r });
    const rgb = RGB[o.colour];
    for (let y = Math.max(0, Math.floor(cy - r - 1)); y < Math.min(size, Math.ceil(cy + r + 1)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r - 1)); x < Math.min(size, Math.ceil(cx + r + 1)); x++) {
        // 3x3 supersampling for smooth edges; the mask takes the pixel centre.
        let cover = 0;
        for (let sy = 0; sy < 3; sy++) for (let sx = 0; sx < 3; sx++) if (inside(o.shape, (x + (sx + 0.5) / 3 - cx) / r, (y + (sy + 0.5) / 3 - cy) / r)) cover++;
        if (cover === 0) continue;
        const a = cover / 9, p = (y * size + x) * 3;
        for (let i = 0; i < 3; i++) data[p + i] = Math.round(data[p + i]! * (1 - a) + rgb[i]! * a);
        if (inside(o.shape, (x + 0.5 - cx) / r, (y + 0.5 - cy) / r)) mask[y * size + x] = k + 1;
      }
    }
  });
  return { image: { width: size, height: size, data }, mask, objects: spec.objects, background, caption: caption(spec.objects, background, false) };
}

/** A random scene of the world with 1..maxObjects objects. */
export function randomScene(seed: number, maxObjects = 1, size = 64): Scene {
  const rand = rng(seed ^ 0x9e3779b9);
  const n = 1 + Math.floor(rand() * maxObjects);
  const objects = Array.from({ length: n }, () => ({
    shape: SHAPES[Math.floor(rand() * SHAPES.length)]!,
    colour: COLOURS[Math.floor(rand() * COLOURS.length)]!,
    size: SIZES[Math.floor(rand() * SIZES.length)]!,
  }));
  return renderScene({ objects }, seed, size);
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
  const flush = () => {
    if (current.shape || current.colour) {
      objects.push({
        shape: current.shape ?? SHAPES[Math.floor(rand() * SHAPES.length)]!,
        colour: current.colour ?? COLOURS[Math.floor(rand() * COLOURS.length)]!,
        size: current.size ?? SIZES[Math.floor(rand() * SIZES.length)]!,
      });
    }
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
  if (objects.length === 0) {
    throw new PromptError(`cannot draw "${prompt}": this world has only the shapes ${SHAPES.join(', ')} in ${COLOURS.join(', ')}`);
  }
  if (objects.length > 3) throw new PromptError(`cannot draw "${prompt}": at most 3 objects per image`);
  return { objects, background };
}
