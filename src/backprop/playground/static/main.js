// The page: one WebSocket to the server, the controls, and the drawing of each frame.
// The server computes every number (docs/playground.md); this module sends the learner's
// actions and draws what comes back.

import { drawHeatmap, drawClasses, drawPoints, drawChart, toPixel, LAYER_COLOURS, CLASS_COLOURS } from './draw.js';
import { NetworkView } from './network.js';
import { chainHTML, walkHTML, gradcheckHTML, num } from './panels.js';
import { fmt, sup, sub } from './util.js';

const $ = id => document.getElementById(id);
const token = new URLSearchParams(location.search).get('token') || '';
const DATASETS = ['circle', 'xor', 'gauss', 'spiral', 'plane', 'multigauss'];
const LIST_KEYS = ['features', 'hidden', 'activations'];
const NUMBER_KEYS = ['noise', 'train_share', 'points', 'classes', 'data_seed', 'learning_rate', 'momentum',
  'batch_size', 'l2', 'seed', 'epochs', 'grid'];

const PLAY_ICON = '<svg viewBox="0 0 24 24" width="24" height="24"><path d="M8 5l11 7-11 7z" fill="currentColor"/></svg>';
const PAUSE_ICON = '<svg viewBox="0 0 24 24" width="24" height="24"><path d="M7 5h3.5v14H7zM13.5 5H17v14h-3.5z" fill="currentColor"/></svg>';

const state = {
  ws: null, config: null, defaults: null, data: null, frame: null, pendingFrame: null,
  history: [], historyVersion: null, walk: null, walkStage: 0, picked: null, neuron: null,
  view: { links: 'weights', deltaSource: 'batch', showTest: false, discretize: false, arrows: false, picked: null },
  playing: false, hoverLoss: null, hoverNorm: null, frames: 0,
};
window.playground = state;   // for tests and the curious: the last frame, the history

const net = new NetworkView($('net'), $('links'), $('nodes'), {
  neuron: (layer, index) => { state.neuron = { layer, index }; send({ type: 'neuron', layer, index }); },
  feature: name => toggleFeature(name),
  link: (layer, row, col) => pick({ layer, param: 'W', row, col }),
  neurons: (i, change) => changeNeurons(i, change),
  activation: (i, value) => { const a = [...state.config.activations]; a[i] = value; sendConfig({ activations: a }); },
});

// ---------------------------------------------------------------- connection
function connect() {
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  ws.binaryType = 'arraybuffer';
  ws.onmessage = e => (typeof e.data === 'string' ? onMessage(JSON.parse(e.data)) : onBinary(e.data));
  ws.onclose = () => { state.playing = false; showError('The connection to the playground server is closed; reload the page when it runs again.'); };
  state.ws = ws;
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function sendConfig(update) { hideError(); send({ type: 'config', config: update }); }

function onMessage(m) {
  if (m.type === 'hello') {
    state.defaults = m.defaults;
    const fromUrl = configFromHash();
    if (Object.keys(fromUrl).length) send({ type: 'config', config: fromUrl });
  } else if (m.type === 'data') onData(m);
  else if (m.type === 'frame') state.pendingFrame = m;
  else if (m.type === 'error') {
    showError(m.message, m.field);
    if (state.playing && !(state.frame && state.frame.playing)) setPlaying(false);   // play was refused
  }
  else if (m.type === 'chain') showChain(m);
  else if (m.type === 'walk') { state.walk = m; state.walkStage = 0; showWalk(); }
  else if (m.type === 'gradcheck') $('gradcheck').innerHTML = gradcheckHTML(m);
  else if (m.type === 'file') download(m);
}

function onBinary(buffer) {
  const frame = state.pendingFrame;
  if (!frame) return;
  state.pendingFrame = null;
  state.frame = frame;
  state.blob = buffer;
  state.frames += 1;
  const h = frame.history;
  if (h.version !== state.historyVersion || h.start === 0) { state.history = []; state.historyVersion = h.version; }
  state.history.push(...h.points);
  if (!frame.playing && state.playing) setPlaying(false);
  draw();
}

// ---------------------------------------------------------------- data and config
function onData(m) {
  state.data = m;
  state.config = m.config;
  state.picked = null; state.view.picked = null;
  syncControls();
  net.build(m.config, m.widths[m.widths.length - 1]);
  writeHash();
}

function syncControls() {
  const c = state.config;
  for (const key of ['learning_rate', 'optimizer', 'loss', 'batch_size', 'epochs', 'seed', 'noise', 'train_share', 'points', 'classes']) {
    const el = $(key);
    if (el && document.activeElement !== el) el.value = c[key];
  }
  $('l2').value = String(c.l2);
  $('activation').value = c.activations[0] || 'tanh';
  $('noise_v').textContent = c.noise;
  $('train_share_v').textContent = `${c.train_share}%`;
  $('points_v').textContent = c.points;
  $('classes_v').textContent = c.classes;
  $('nlayers').textContent = c.hidden.length;
  document.querySelectorAll('#datasets button').forEach(b => b.classList.toggle('on', b.dataset.name === c.dataset));
}

function configFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const out = {};
  for (const [key, value] of params) {
    if (LIST_KEYS.includes(key)) out[key] = value === '' ? [] : value.split(',').map(v => (key === 'hidden' ? Number(v) : v));
    else if (NUMBER_KEYS.includes(key)) out[key] = Number(value);
    else out[key] = value;
  }
  return out;
}

function writeHash() {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state.config)) {
    if (key === 'dataset' && value === 'csv') continue;   // an upload cannot travel in a URL
    if (JSON.stringify(value) !== JSON.stringify(state.defaults ? state.defaults[key] : undefined)) {
      params.set(key, Array.isArray(value) ? value.join(',') : String(value));
    }
  }
  history.replaceState(null, '', `${location.pathname}${location.search}#${params.toString()}`);
}

function toggleFeature(name) {
  const f = new Set(state.config.features);
  if (f.has(name)) f.delete(name); else f.add(name);
  sendConfig({ features: [...f] });
}

function changeNeurons(i, change) {
  const hidden = [...state.config.hidden];
  hidden[i] += change;
  if (hidden[i] < 1) { showError('a hidden layer needs at least one neuron; remove the layer instead'); return; }
  sendConfig({ hidden });
}

// ---------------------------------------------------------------- drawing
function draw() {
  const f = state.frame, d = state.data;
  if (!f || !d) return;
  $('epoch').textContent = state.config.epochs ? `${f.epoch} / ${state.config.epochs}` : f.epoch;
  $('steps').textContent = f.step;
  for (const key of ['train_loss', 'test_loss']) $(key).textContent = fmt(f[key], 4);
  for (const key of ['train_accuracy', 'test_accuracy']) $(key).textContent = f[key] === null ? '–' : `${(100 * f[key]).toFixed(1)}%`;
  net.build(state.config, f.grid.widths[f.grid.widths.length - 1]);
  net.draw(f, state.blob, state.view);
  drawOutput();
  drawCharts();
  showPicked();
}

function drawOutput() {
  const f = state.frame, d = state.data;
  const bytes = new Uint8Array(state.blob);
  const r = f.grid.resolution, R = f.grid.output_resolution;
  const start = f.grid.widths.reduce((a, w) => a + w, 0) * r * r;
  const canvas = $('plane');
  if (f.grid.output === 'classes') drawClasses(canvas, bytes.subarray(start, start + R * R), bytes.subarray(start + R * R, start + 2 * R * R), R, state.view);
  else drawHeatmap(canvas, bytes.subarray(start, start + R * R), R, state.view);
  drawPoints($('plane_top').getContext('2d'), d, {
    showTest: state.view.showTest, arrows: state.view.arrows ? f.input_gradients : null,
    selected: f.sample ? { set: f.sample.set, index: f.sample.index } : null,
  });
}

function drawCharts() {
  const h = state.history;
  const xs = h.map(p => p.step);
  const best = drawChart($('loss_chart'), xs, [
    { values: h.map(p => p.test_loss), colour: '#1d2330', width: 2 },
    { values: h.map(p => p.train_loss), colour: '#9aa3b5' }], { hover: state.hoverLoss });
  tip($('loss_tip'), best, p => `step ${p.step} · epoch ${p.epoch} · test ${fmt(p.test_loss, 6)} · train ${fmt(p.train_loss, 6)}`);
  const layers = h.length ? h[h.length - 1].delta_norms.length : 0;
  const series = Array.from({ length: layers }, (_, l) => ({ values: h.map(p => p.delta_norms[l]), colour: LAYER_COLOURS[l % LAYER_COLOURS.length] }));
  const bestNorm = drawChart($('norm_chart'), xs, series, { log: true, hover: state.hoverNorm });
  tip($('norm_tip'), bestNorm, p => p.delta_norms.map((v, l) => `‖δ${sup(l + 1)}‖ ${fmt(v, 3)}`).join(' · '));
  const legend = $('norm_legend');
  if (legend.childElementCount !== series.length + 1) {
    legend.replaceChildren(...series.map((s, l) => {
      const item = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = s.colour;   // a style property, which the page's CSP allows
      item.append(swatch, `‖δ${sup(l + 1)}‖`);
      return item;
    }), Object.assign(document.createElement('span'), { textContent: '(log scale)' }));
  }
}

function tip(el, index, text) {
  if (index === null || index === undefined || !state.history[index]) { el.hidden = true; return; }
  el.hidden = false;
  el.textContent = text(state.history[index]);
}

for (const [canvas, key] of [['loss_chart', 'hoverLoss'], ['norm_chart', 'hoverNorm']]) {
  $(canvas).addEventListener('mousemove', e => { state[key] = e.offsetX * ($(canvas).width / $(canvas).clientWidth); drawCharts(); });
  $(canvas).addEventListener('mouseleave', () => { state[key] = null; drawCharts(); });
}

// ---------------------------------------------------------------- panels
function showChain(c) {
  const s = state.frame && state.frame.sample;
  $('chain_where').textContent = `neuron ${c.index + 1} of layer ${c.layer}`;
  $('chain').innerHTML = chainHTML(c, s || { set: 'train', index: 0 });
  net.mark('selected', c.layer, c.index);
  pick({ layer: c.layer, param: 'b', row: c.index, col: 0 }, false);
}

function showWalk() {
  const w = state.walk;
  $('walk').innerHTML = walkHTML(w, state.walkStage);
  $('walk_next').disabled = state.walkStage >= w.stages.length - 1;
  $('walk_animate').disabled = false;
  const s = w.stages[state.walkStage];
  const layer = s.stage === 'forward' || s.stage === 'delta' ? s.layer : s.stage === 'input' || s.stage === 'input_gradient' ? 0 : null;
  net.mark('stage', layer, null);
}

function pick(p, scroll = true) {
  state.picked = p;
  state.view.picked = p.param === 'W' ? p : null;
  const layer = state.frame.layers[p.layer - 1];
  const value = p.param === 'W' ? layer.W[p.row][p.col] : layer.b[p.row];
  $('link_where').textContent = p.param === 'W' ? `from neuron ${p.col + 1} of layer ${p.layer - 1} to neuron ${p.row + 1} of layer ${p.layer}` : `bias of neuron ${p.row + 1} of layer ${p.layer}`;
  $('link').innerHTML = `<div class="math" id="param_numbers"></div>
    <label>New value <input id="param_value" type="text" value="${value}"> <button id="param_set">Set</button></label>
    <button id="param_check">Gradient check</button>`;
  showPicked();
  $('gradcheck').innerHTML = '';
  $('param_set').onclick = () => {
    const v = Number($('param_value').value.trim());
    if ($('param_value').value.trim() === '' || !Number.isFinite(v)) { showError(`value must be a number; got "${$('param_value').value}"`, 'value'); return; }
    hideError();
    send({ type: 'set_param', ...p, value: v });
    if (state.neuron) send({ type: 'neuron', ...state.neuron });
  };
  $('param_check').onclick = () => send({ type: 'gradcheck', ...p });
  if (state.frame) net.drawLinks(state.frame, state.view);
  if (scroll) $('link_panel').scrollIntoView({ block: 'nearest' });
}

// the picked weight's value and gradient, from the latest frame
function showPicked() {
  const p = state.picked, el = $('param_numbers');
  if (!p || !el || !state.frame || !state.frame.layers[p.layer - 1]) return;
  const layer = state.frame.layers[p.layer - 1];
  const value = p.param === 'W' ? (layer.W[p.row] || [])[p.col] : layer.b[p.row];
  const grad = p.param === 'W' ? (layer.dW[p.row] || [])[p.col] : layer.db[p.row];
  if (value === undefined) return;
  const name = p.param === 'W' ? `w${sup(p.layer)}${sub(p.row)}${sub(p.col)}` : `b${sup(p.layer)}${sub(p.row)}`;
  el.innerHTML = `<div class="eq">${name} = ${num(value, 8)}</div>
    <div class="eq">∂C/∂${name} = ${num(grad, 8)} <span class="why">(last mini-batch)</span></div>`;
}

function download(m) {
  const bytes = Uint8Array.from(atob(m.base64), c => c.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type: m.mime }));
  const a = document.createElement('a');
  a.href = url; a.download = m.name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---------------------------------------------------------------- errors
let errorTimer = null;
function showError(message, field) {
  const el = $('error');
  el.textContent = message;
  el.dataset.field = field || '';
  el.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(hideError, 8000);
}
function hideError() { $('error').hidden = true; }

// ---------------------------------------------------------------- controls
function setPlaying(on) {
  state.playing = on;
  $('play').innerHTML = on ? PAUSE_ICON : PLAY_ICON;
  $('play').dataset.playing = on;
}

$('play').onclick = () => { hideError(); setPlaying(!state.playing); send({ type: state.playing ? 'play' : 'pause' }); };
$('step').onclick = () => {
  send({ type: 'step' });
  if (state.neuron) send({ type: 'neuron', ...state.neuron });   // the chain rule with the new weights
};
$('reset').onclick = () => { setPlaying(false); send({ type: 'reset' }); };
$('regenerate').onclick = () => send({ type: 'regenerate' });
let walkTimer = null;
$('walk_start').onclick = () => { clearInterval(walkTimer); setPlaying(false); send({ type: 'pause' }); send({ type: 'step_sample' }); };
$('walk_next').onclick = () => { state.walkStage += 1; showWalk(); };
$('walk_animate').onclick = () => {
  clearInterval(walkTimer);
  state.walkStage = 0;
  showWalk();
  walkTimer = setInterval(() => {
    if (!state.walk || state.walkStage >= state.walk.stages.length - 1) { clearInterval(walkTimer); return; }
    state.walkStage += 1;
    showWalk();
  }, 900);
};
$('export_csv').onclick = () => send({ type: 'export', what: 'csv' });
$('export_model').onclick = () => send({ type: 'export', what: 'model' });
$('add_layer').onclick = () => {
  const c = state.config;
  if (c.hidden.length >= 6) { showError('at most 6 hidden layers'); return; }
  sendConfig({ hidden: [...c.hidden, 2], activations: [...c.activations, c.activations[c.activations.length - 1] || 'tanh'] });
};
$('remove_layer').onclick = () => {
  const c = state.config;
  if (!c.hidden.length) return;
  sendConfig({ hidden: c.hidden.slice(0, -1), activations: c.activations.slice(0, -1) });
};

// a text field sends its number as typed: the server checks it and explains a bad one
$('learning_rate').addEventListener('change', e => {
  const text = e.target.value.trim();
  const v = Number(text);
  sendConfig({ learning_rate: text === '' || !Number.isFinite(v) ? text : v });
});
for (const key of ['batch_size', 'epochs', 'seed']) {
  $(key).addEventListener('change', e => { const v = Number(e.target.value); sendConfig({ [key]: Number.isInteger(v) ? v : e.target.value }); });
}
for (const key of ['optimizer', 'loss']) $(key).addEventListener('change', e => sendConfig({ [key]: e.target.value }));
$('l2').addEventListener('change', e => sendConfig({ l2: Number(e.target.value) }));
$('activation').addEventListener('change', e => sendConfig({ activations: state.config.hidden.map(() => e.target.value) }));
for (const key of ['noise', 'train_share', 'points', 'classes']) {
  $(key).addEventListener('input', e => { $(`${key}_v`).textContent = key === 'train_share' ? `${e.target.value}%` : e.target.value; });
  $(key).addEventListener('change', e => sendConfig({ [key]: Number(e.target.value) }));
}
$('show_test').onchange = e => { state.view.showTest = e.target.checked; draw(); };
$('discretize').onchange = e => { state.view.discretize = e.target.checked; draw(); };
$('show_arrows').onchange = e => { state.view.arrows = e.target.checked; draw(); };
for (const [id, key, value] of [['show_weights', 'links', 'weights'], ['show_grads', 'links', 'grads'],
  ['delta_batch', 'deltaSource', 'batch'], ['delta_sample', 'deltaSource', 'sample']]) {
  $(id).onclick = () => {
    state.view[key] = value;
    document.querySelectorAll(`#${id}`).forEach(b => b.parentElement.querySelectorAll('button').forEach(x => x.classList.toggle('on', x === b)));
    if (key === 'deltaSource' && value === 'sample' && !(state.frame && state.frame.sample)) showError('click a point in the output plane to choose the sample');
    draw();
  };
}
$('csv').addEventListener('change', async e => {
  const file = e.target.files[0];
  if (!file) return;
  if (file.size > 65536) { showError(`csv must be at most 65536 bytes; got ${file.size}`, 'text'); return; }
  send({ type: 'csv', text: await file.text() });
  e.target.value = '';
});

// a click on the plane selects the nearest point (training points, and test points when shown)
$('plane_top').addEventListener('click', e => {
  const d = state.data;
  if (!d) return;
  const canvas = $('plane_top');
  const px = e.offsetX * canvas.width / canvas.clientWidth, py = e.offsetY * canvas.height / canvas.clientHeight;
  let best = null;
  const parts = state.view.showTest ? ['train', 'test'] : ['train'];
  for (const part of parts) {
    d[part].x.forEach((x, index) => {
      const [qx, qy] = toPixel(x, d.extent, canvas.width);
      const dist = (qx - px) ** 2 + (qy - py) ** 2;
      if (!best || dist < best.dist) best = { set: part, index, dist };
    });
  }
  if (best) {
    send({ type: 'select', sample: { set: best.set, index: best.index } });
    if (state.neuron) send({ type: 'neuron', ...state.neuron });
  }
});

// dataset icons: schematic pictures, not data
function drawIcon(canvas, name) {
  const ctx = canvas.getContext('2d');
  const s = canvas.width;
  ctx.fillStyle = '#fafafa'; ctx.fillRect(0, 0, s, s);
  const dot = (x, y, c) => { ctx.fillStyle = `rgb(${c})`; ctx.beginPath(); ctx.arc(x * s, y * s, s / 28, 0, 7); ctx.fill(); };
  const [o, b, g] = [CLASS_COLOURS[0].join(','), CLASS_COLOURS[1].join(','), CLASS_COLOURS[2].join(',')];
  let seed = 7;
  const rnd = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  for (let i = 0; i < 90; i++) {
    const x = rnd(), y = rnd();
    if (name === 'circle') { const r = Math.hypot(x - 0.5, y - 0.5); if (r < 0.2) dot(x, y, b); else if (r > 0.3 && r < 0.45) dot(x, y, o); }
    if (name === 'xor') dot(x, y, (x - 0.5) * (y - 0.5) > 0 ? b : o);
    if (name === 'gauss') { const c = i % 2; dot(c ? 0.3 + (x - 0.5) * 0.3 : 0.7 + (x - 0.5) * 0.3, c ? 0.3 + (y - 0.5) * 0.3 : 0.7 + (y - 0.5) * 0.3, c ? b : o); }
    if (name === 'spiral') { const t = i / 90, c = i % 3, a = t * 11 + c * 2.09; dot(0.5 + 0.4 * t * Math.sin(a), 0.5 + 0.4 * t * Math.cos(a), [o, b, g][c]); }
    if (name === 'plane') { const v = (x + y - 1); dot(x, y, v < 0 ? o : b); }
    if (name === 'multigauss') { const v = Math.sin(x * 9) * Math.cos(y * 6); dot(x, y, v < 0 ? o : b); }
  }
}
for (const name of DATASETS) {
  const b = document.createElement('button');
  b.dataset.name = name;
  b.id = `dataset_${name}`;
  const c = document.createElement('canvas');
  c.width = 52; c.height = 52;
  drawIcon(c, name);
  b.appendChild(c);
  b.appendChild(document.createTextNode(name === 'multigauss' ? 'multi-gauss' : name));
  b.onclick = () => sendConfig({ dataset: name });
  $('datasets').appendChild(b);
}

// the diagram's spacing follows the window's width
window.addEventListener('resize', () => { net.structure = null; draw(); });

// a shared link pasted into this tab: apply its settings
window.addEventListener('hashchange', () => {
  const fromUrl = configFromHash();
  if (Object.keys(fromUrl).length) sendConfig(fromUrl);
});

setPlaying(false);
connect();
