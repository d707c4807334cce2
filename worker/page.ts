// GET /: pick or drop an image, see the top-k with bars, a segmentation overlay, timings.
export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>nameonly</title>
<style>
 body{font:15px/1.4 system-ui,sans-serif;max-width:880px;margin:2em auto;padding:0 1em;color:#222}
 #drop{border:2px dashed #999;border-radius:8px;padding:1.5em;text-align:center;cursor:pointer}
 #drop.over{background:#eef}
 .row{display:flex;gap:1.5em;flex-wrap:wrap;margin-top:1em}
 .stack{position:relative;width:256px;height:256px;image-rendering:pixelated}
 .stack img{position:absolute;inset:0;width:256px;height:256px;object-fit:contain;image-rendering:pixelated}
 #overlay{opacity:.55}
 .bar{background:#4a7;height:1.1em;border-radius:3px}
 table{border-collapse:collapse}td{padding:2px 6px}
 .err{color:#b00}
 small{color:#666}
</style></head><body>
<h1>nameonly</h1>
<p>Zero-shot classification and segmentation from class names only. <small id="about"></small></p>
<div id="drop">Drop an image here or <input type="file" id="file" accept="image/png,image/jpeg"></div>
<div id="examples" hidden><p><small>shapes-clip knows one world: 64-pixel scenes with coloured shapes of radius 8–18 px on
plain, striped, checkered, gradient or noisy backgrounds. Click an example of it:</small></p><p id="example-list"></p></div>
<p><label>API key (if the deployment is not public): <input id="key" type="password" size="30"></label>
 <label>method <select id="method"><option>auto</option><option>clip</option><option>calip</option><option>tipx</option><option>combined</option></select></label></p>
<p><label>labels <input id="labels-in" size="44" placeholder="comma-separated, e.g. receipt, invoice, menu"></label>
 <label><input type="checkbox" id="with-index"> with the index's classes</label>
 <br><small>Empty: the index's classes. Labels given here are embedded by the text Worker once, then cached.</small></p>
<div class="row">
 <div><div class="stack"><img id="preview" alt=""><img id="overlay" alt=""></div>
  <p><label><input type="checkbox" id="show" checked> segmentation overlay</label> <label>opacity <input type="range" id="opacity" min="0" max="100" value="55"></label></p></div>
 <div><p id="answer"></p><table id="labels"></table><div id="legend"></div><p id="timings"><small></small></p><p id="error" class="err"></p></div>
</div>
<script>
const $ = (id) => document.getElementById(id);
const showOverlay = () => ($('overlay').style.opacity = $('show').checked ? String($('opacity').value / 100) : '0');
$('show').addEventListener('change', showOverlay);
$('opacity').addEventListener('input', showOverlay);
const headers = () => ($('key').value ? { authorization: 'Bearer ' + $('key').value } : {});
let indexName = '';
// labels= (and the index, when its classes are kept) for both requests.
const labelQuery = () => {
  const labels = $('labels-in').value.trim();
  if (!labels) return '';
  return '&labels=' + encodeURIComponent(labels) + ($('with-index').checked && indexName ? '&index=' + encodeURIComponent(indexName) : '');
};
fetch('/v1/classes', { headers: headers() }).then((r) => r.json()).then((c) => {
  if (c.index) indexName = c.index.name;
  if (c.classes) $('about').textContent = 'Index ' + c.index.name + ' (' + c.classes.length + ' classes: ' + c.classes.map((x) => x.name).join(', ') + '), model ' + c.model + '.';
  // The embedded model's own world has examples; another model's world is the user's to bring.
  if (c.model === 'shapes-clip') {
    $('examples').hidden = false;
    $('example-list').innerHTML = [0, 1, 2, 3, 4, 5].map((k) => '<img class="example" src="/examples/' + k + '.png" width="64" height="64" alt="example ' + k + '" style="cursor:pointer;margin-right:6px;image-rendering:pixelated">').join('');
    for (const img of document.querySelectorAll('img.example')) img.addEventListener('click', async () => {
      const blob = await (await fetch(img.src)).blob();
      run(new File([blob], 'example.png', { type: 'image/png' }));
    });
  }
}).catch(() => {});
async function run(file) {
  $('error').textContent = '';
  $('preview').src = URL.createObjectURL(file);
  $('overlay').removeAttribute('src');
  const method = $('method').value;
  const c = await fetch('/v1/classify?top_k=5&method=' + method + labelQuery(), { method: 'POST', body: file, headers: { ...headers(), 'content-type': file.type || 'application/octet-stream' } });
  const body = await c.json();
  if (!c.ok) {
    // An error clears the previous answer: what is shown is always this image's.
    for (const id of ['answer', 'labels', 'legend', 'timings']) $(id).innerHTML = '';
    $('error').textContent = body.error.code + ': ' + body.error.message;
    return;
  }
  $('answer').innerHTML = (body.answer === 'none of these' ? '<b>none of these</b> (top guesses below)' : '<b>' + body.answer + '</b>') + ' <small>' + (body.calibrated ? 'calibrated probabilities' : 'raw softmax: no support set to calibrate on') + '</small>';
  $('labels').innerHTML = body.labels.map((l) => '<tr class="label"><td>' + l.label + '</td><td style="width:200px"><div class="bar" style="width:' + Math.max(1, 200 * l.score).toFixed(0) + 'px"></div></td><td class="score">' + (100 * l.score).toFixed(1) + ' %</td></tr>').join('');
  const t = body.timings_ms;
  const given = body.request_labels;
  const text = given ? ' · labels ' + t.text + ' ms (' + given.cache.encoded + ' embedded, ' + (given.cache.isolate + given.cache.shared) + ' cached)' + (given.truncated.length ? ' · cut to 77 tokens: ' + given.truncated.join(', ') : '') : '';
  $('timings').innerHTML = '<small>' + body.method + text + ' · decode ' + t.decode + ' ms · preprocess ' + t.preprocess + ' ms · encode ' + t.encode + ' ms · score ' + t.score + ' ms · total ' + t.total + ' ms</small>';
  const s = await fetch('/v1/segment?format=png' + labelQuery(), { method: 'POST', body: file, headers: { ...headers(), 'content-type': file.type || 'application/octet-stream' } });
  if (s.ok) {
    $('overlay').src = URL.createObjectURL(await s.blob());
    const legend = JSON.parse(s.headers.get('x-nameonly-legend') || '[]');
    $('legend').innerHTML = '<small>segmentation overlay: ' + legend.map((l) => '<span style="display:inline-block;width:.8em;height:.8em;background:rgb(' + l.color.join(',') + ')"></span> ' + l.label).join(', ') + '</small>';
  }
}
$('file').addEventListener('change', (e) => e.target.files[0] && run(e.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); if (e.dataTransfer.files[0]) run(e.dataTransfer.files[0]); });
</script></body></html>`;
