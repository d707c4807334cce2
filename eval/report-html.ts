// The eval report as one self-contained page: the numbers, the confusion matrix as a picture,
// the most confused pairs with their images (thumbnails inlined as data: URIs).
import type { UserEvalReport } from './user-eval.js';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '–' : `${(100 * x).toFixed(1)}%`);

/** Cell shade of a row-normalised frequency: white (0) to deep blue (1). */
export function cellColour(fraction: number): string {
  const f = Math.max(0, Math.min(1, fraction));
  return `rgb(${Math.round(255 - 225 * f)}, ${Math.round(255 - 165 * f)}, ${Math.round(255 - 75 * f)})`;
}

function confusionSvg(report: UserEvalReport): string {
  const C = report.classes.length, cell = Math.max(6, Math.min(28, Math.floor(560 / C))), label = C <= 40 ? 110 : 0;
  const size = label + C * cell;
  const parts: string[] = [];
  report.confusion.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => {
      const f = total ? count / total : 0;
      parts.push(`<rect x="${label + p * cell}" y="${label + t * cell}" width="${cell}" height="${cell}" fill="${cellColour(f)}" data-true="${t}" data-predicted="${p}" data-count="${count}"><title>${escape(report.classes[t]!)} → ${escape(report.classes[p]!)}: ${count}</title></rect>`);
      if (count && cell >= 18) parts.push(`<text x="${label + p * cell + cell / 2}" y="${label + t * cell + cell / 2 + 4}" text-anchor="middle" font-size="10" fill="${f > 0.5 ? 'white' : 'black'}">${count}</text>`);
    });
  });
  if (label) {
    report.classes.forEach((name, k) => {
      parts.push(`<text x="${label - 4}" y="${label + k * cell + cell / 2 + 4}" text-anchor="end" font-size="11">${escape(name.slice(0, 16))}</text>`);
      parts.push(`<text transform="translate(${label + k * cell + cell / 2 + 4},${label - 4}) rotate(-60)" font-size="11">${escape(name.slice(0, 16))}</text>`);
    });
  }
  return `<svg id="confusion" xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}" data-cell="${cell}" data-offset="${label}">${parts.join('')}</svg>`;
}

export function reportHtml(report: UserEvalReport, thumbnails: Map<string, string>): string {
  const methods = Object.entries(report.methods);
  const methodRows = methods.map(([m, s]) => `<tr><td>${m}${m === 'auto' ? ` (${report.auto})` : ''}</td><td>${pct(s.top1)}</td><td>${pct(s.top5)}</td><td>${pct(s.meanPerClass)}</td></tr>`).join('');
  const perClass = report.classes.map((name, k) => `<tr><td>${escape(name)}</td>${methods.map(([, s]) => `<td>${pct(s.perClass[k])}</td>`).join('')}${report.segmentation ? `<td>${pct(report.segmentation.perClass[k])}</td>` : ''}</tr>`).join('');
  const confused = report.confused.length
    ? report.confused.map((c) => `<div class="pair"><div><b>${escape(c.truth)}</b> taken for <b>${escape(c.predicted)}</b> × ${c.count}</div>${c.files.map((f) => `<img src="${thumbnails.get(f) ?? ''}" title="${escape(f)}" alt="${escape(f)}">`).join('')}</div>`).join('')
    : '<p>No image was confused.</p>';
  const tuner = report.tuner
    ? `<h2>Hyperparameters: name-only vs. chosen with these labels</h2><p>The index's tuner saw only the class names and its support set; the second row is what a search over these labelled images would pick (the papers' protocol). The difference is the cost of honesty on your data.</p>
<table><tr><th></th><th>CALIP</th><th>TIP-X</th><th>combined</th></tr>
${(['nameOnly', 'peeking'] as const).map((k) => `<tr><td>${k === 'nameOnly' ? 'name-only (index)' : 'label-peeking'}</td>${(['calip', 'tipx', 'combined'] as const).map((m) => { const { accuracy, ...params } = report.tuner![k][m]; return `<td>${pct(accuracy)}<br><small>${escape(Object.entries(params).map(([p, v]) => `${p} ${v}`).join(', '))}</small></td>`; }).join('')}</tr>`).join('')}</table>`
    : '<p>This index has no support set: CALIP kept its published defaults, and there is nothing to tune.</p>';
  const segmentation = report.segmentation ? `<h2>Segmentation</h2><p>${report.segmentation.images} images: mIoU <b>${pct(report.segmentation.mIoU)}</b>, pixel accuracy ${pct(report.segmentation.pixelAccuracy)}.</p>` : '';
  return `<!doctype html><html><head><meta charset="utf-8"><title>nameonly eval: ${escape(report.index.name)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}.pair{margin:8px 0}.pair img{width:96px;height:96px;image-rendering:pixelated;margin:2px;border:1px solid #ccc}</style></head><body>
<h1>${escape(report.index.name)} on ${report.images} labelled images</h1>
<p>Index version ${escape(report.index.version)}, model ${escape(report.model)}, ${report.classes.length} classes.</p>
<h2>Accuracy</h2><table><tr><th>method</th><th>top-1</th><th>top-5</th><th>mean per class</th></tr>${methodRows}</table>
<h2>Confusion matrix (${report.auto}; rows: true class, columns: predicted; shade: share of the row)</h2>${confusionSvg(report)}
<h2>Most confused</h2>${confused}
${tuner}${segmentation}
<h2>Per class</h2><table><tr><th>class</th>${methods.map(([m]) => `<th>${m}</th>`).join('')}${report.segmentation ? '<th>IoU</th>' : ''}</tr>${perClass}</table>
</body></html>`;
}
