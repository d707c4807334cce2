import { describe, expect, it } from 'vitest';
import { decodeImage } from '../core/decode.js';
import { renderPrompt } from '../eval/generator-server.js';
import { COLOURS, inside, parsePrompt, PromptError, randomScene, renderScene, SHAPES } from '../eval/shapes-world.js';

describe('shapes-world renderer', () => {
  it('is deterministic per seed and different across seeds', () => {
    expect(randomScene(5, 3).image.data).toEqual(randomScene(5, 3).image.data);
    expect(randomScene(5, 3).image.data).not.toEqual(randomScene(6, 3).image.data);
  });

  it('draws the asked colour where the mask says the object is', () => {
    for (const colour of COLOURS) {
      const scene = renderScene({ objects: [{ shape: 'square', colour, size: 'large' }], background: 'plain' }, 11);
      const inside = [...scene.mask.keys()].filter((i) => scene.mask[i] === 1);
      expect(inside.length).toBeGreaterThan(200); // a large square covers a good part of 64×64
      // Pixels well inside the object have its exact colour (anti-aliasing only touches edges).
      const counts = new Map<string, number>();
      for (const i of inside) {
        const key = Array.from(scene.image.data.subarray(i * 3, i * 3 + 3)).join(',');
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const [top] = [...counts.entries()].sort((a, b) => b[1] - a[1]);
      expect(top![1] / inside.length).toBeGreaterThan(0.7);
    }
  });

  it('shapes are distinguishable: each shape’s mask differs from every other', () => {
    const grid = (shape: (typeof SHAPES)[number]) => {
      const bits: boolean[] = [];
      for (let y = -1; y <= 1; y += 0.1) for (let x = -1; x <= 1; x += 0.1) bits.push(inside(shape, x, y));
      return bits;
    };
    for (const a of SHAPES) for (const b of SHAPES) if (a !== b) expect(grid(a)).not.toEqual(grid(b));
    expect(inside('ring', 0, 0)).toBe(false);
    expect(inside('circle', 0, 0)).toBe(true);
  });

  it('captions name the objects', () => {
    const scene = renderScene({ objects: [{ shape: 'star', colour: 'red', size: 'small' }, { shape: 'ring', colour: 'blue', size: 'large' }] }, 3);
    expect(scene.caption).toBe('a photo of a red star and a blue ring.');
  });
});

describe('SuS prompt parsing', () => {
  it('understands SuS-style prompts', () => {
    expect(parsePrompt('A photo of a red star.', 1)).toMatchObject({ objects: [{ shape: 'star', colour: 'red' }] });
    expect(parsePrompt('a large blue ring on a striped background', 1)).toEqual({ objects: [{ shape: 'ring', colour: 'blue', size: 'large' }], background: 'striped' });
    expect(parsePrompt('a red circle and a green square', 1).objects.map((o) => `${o.colour} ${o.shape}`)).toEqual(['red circle', 'green square']);
    expect(parsePrompt('A photo of many hearts.', 1).objects[0]!.shape).toBe('heart');
    const onlyShape = parsePrompt('A photo of a diamond.', 4).objects[0]!;
    expect(onlyShape.shape).toBe('diamond');
    expect(COLOURS).toContain(onlyShape.colour);
  });

  it('refuses what it cannot draw, with a clear error', () => {
    expect(() => parsePrompt('A photo of a dog.', 1)).toThrow(PromptError);
    expect(() => parsePrompt('A photo of a dog.', 1)).toThrow(/cannot draw "A photo of a dog\."/);
    expect(() => parsePrompt('a red circle and a blue square and a green star and a black ring', 1)).toThrow(/at most 3/);
  });

  it('the generator protocol renders a PNG of the prompt', () => {
    const png = renderPrompt('A photo of a red star.', 7, 64);
    const img = decodeImage(png);
    expect([img.width, img.height]).toEqual([64, 64]);
    let red = 0;
    for (let i = 0; i < 64 * 64; i++) if (img.data[i * 3] === 220 && img.data[i * 3 + 1] === 30 && img.data[i * 3 + 2] === 30) red++;
    expect(red).toBeGreaterThan(30);
  });
});
