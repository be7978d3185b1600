// Drawing helpers: colour maps, heatmaps from the server's bytes, the plane, the charts.
// Nothing here computes a network's numbers; it only turns them into pixels.

export const NEG = [232, 131, 58];   // -1: orange
export const POS = [31, 119, 180];   // +1: blue
const MID = [245, 245, 245];
export const CLASS_COLOURS = [[232, 131, 58], [31, 119, 180], [44, 160, 44], [148, 103, 189], [214, 39, 40]];
export const LAYER_COLOURS = ['#1f77b4', '#e8833a', '#2ca02c', '#9467bd', '#d62728', '#8c564b', '#17becf'];

// byte 0..255 (the server's round((v + 1) * 127.5)) to a colour between orange, white and blue
const DIVERGING = (() => {
  const table = new Uint8ClampedArray(256 * 3);
  for (let b = 0; b < 256; b++) {
    const v = b / 127.5 - 1;
    const end = v < 0 ? NEG : POS;
    const t = Math.min(1, Math.abs(v));
    for (let c = 0; c < 3; c++) table[b * 3 + c] = MID[c] + (end[c] - MID[c]) * t;
  }
  return table;
})();

export function signColour(v, alpha = 1) {
  const c = v < 0 ? NEG : POS;
  return `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}

// one heatmap: `bytes` (r*r, rows from the top) into `canvas` (r x r pixels, scaled by CSS)
export function drawHeatmap(canvas, bytes, r, { discretize = false } = {}) {
  if (canvas.width !== r) { canvas.width = r; canvas.height = r; }
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(r, r);
  const px = img.data;
  for (let i = 0; i < r * r; i++) {
    let b = bytes[i];
    if (discretize) b = b >= 128 ? 255 : 0;
    px[i * 4] = DIVERGING[b * 3]; px[i * 4 + 1] = DIVERGING[b * 3 + 1]; px[i * 4 + 2] = DIVERGING[b * 3 + 2];
    px[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// more than two classes: the winning class's colour, faded by its probability (bytes of 2p - 1)
export function drawClasses(canvas, probBytes, classBytes, r, { discretize = false } = {}) {
  if (canvas.width !== r) { canvas.width = r; canvas.height = r; }
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(r, r);
  const px = img.data;
  for (let i = 0; i < r * r; i++) {
    const c = CLASS_COLOURS[classBytes[i] % CLASS_COLOURS.length];
    const p = probBytes[i] / 255;   // (2p - 1 + 1) / 2 = p
    const t = discretize ? 0.75 : Math.max(0, Math.min(1, p));
    for (let k = 0; k < 3; k++) px[i * 4 + k] = 250 + (c[k] - 250) * t;
    px[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// the points of the data set over the plane; plane coordinates [-e, e]^2 to pixels
export function toPixel(x, extent, size) {
  return [(x[0] + extent) / (2 * extent) * size, (extent - x[1]) / (2 * extent) * size];
}

export function pointColour(y, data) {
  if (data.regression) return signColour(y, Math.min(1, 0.35 + Math.abs(y)));
  if (data.classes === 2) return signColour(y === 1 ? 1 : -1);
  const c = CLASS_COLOURS[y % CLASS_COLOURS.length];
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export function drawPoints(ctx, data, { showTest, selected, arrows }) {
  const size = ctx.canvas.width;
  ctx.clearRect(0, 0, size, size);
  const draw = (part, test) => {
    part.x.forEach((x, i) => {
      const [px, py] = toPixel(x, data.extent, size);
      ctx.beginPath();
      ctx.arc(px, py, 3.2, 0, 2 * Math.PI);
      ctx.fillStyle = pointColour(part.y[i], data);
      ctx.fill();
      ctx.lineWidth = 1;
      ctx.strokeStyle = test ? '#111' : 'white';
      ctx.stroke();
    });
  };
  draw(data.train, false);
  if (showTest) draw(data.test, true);
  if (arrows) drawArrows(ctx, data, arrows);
  if (selected) {
    const part = selected.set === 'train' ? data.train : data.test;
    const x = part.x[selected.index];
    if (x) {
      const [px, py] = toPixel(x, data.extent, size);
      ctx.beginPath();
      ctx.arc(px, py, 8, 0, 2 * Math.PI);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = '#111';
      ctx.stroke();
    }
  }
}

// ∂C/∂(x1, x2) at each training point: direction as computed, length on a log scale
function drawArrows(ctx, data, grads) {
  const size = ctx.canvas.width;
  ctx.strokeStyle = 'rgba(20,20,20,.75)';
  ctx.fillStyle = 'rgba(20,20,20,.75)';
  ctx.lineWidth = 1.2;
  grads.forEach((g, i) => {
    const x = data.train.x[i];
    if (!x) return;
    const n = Math.hypot(g[0], g[1]);
    if (!(n > 1e-12)) return;
    const len = Math.max(2, Math.min(18, 3 * (Math.log10(n) + 5)));
    const [px, py] = toPixel(x, data.extent, size);
    const dx = g[0] / n * len, dy = -g[1] / n * len;
    ctx.beginPath(); ctx.moveTo(px, py); ctx.lineTo(px + dx, py + dy); ctx.stroke();
    const a = Math.atan2(dy, dx);
    ctx.beginPath();
    ctx.moveTo(px + dx, py + dy);
    ctx.lineTo(px + dx - 4 * Math.cos(a - 0.5), py + dy - 4 * Math.sin(a - 0.5));
    ctx.lineTo(px + dx - 4 * Math.cos(a + 0.5), py + dy - 4 * Math.sin(a + 0.5));
    ctx.fill();
  });
}

// a line chart of series [{values, colour}] over `xs`; log scale when asked
export function drawChart(canvas, xs, series, { log = false, hover = null } = {}) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const all = series.flatMap(s => s.values).filter(v => Number.isFinite(v) && (!log || v > 0));
  if (!xs.length || !all.length) return null;
  const tr = v => (log ? Math.log10(v) : v);
  let lo = log ? Math.min(...all.map(tr)) : 0, hi = Math.max(...all.map(tr));
  if (hi - lo < 1e-9) { hi += 0.5; lo -= log ? 0.5 : 0; }
  const x0 = xs[0], x1 = xs[xs.length - 1] === x0 ? x0 + 1 : xs[xs.length - 1];
  const X = x => 4 + (x - x0) / (x1 - x0) * (w - 8);
  const Y = v => h - 4 - (tr(v) - lo) / (hi - lo) * (h - 8);
  for (const s of series) {
    ctx.beginPath();
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = s.width || 1.6;
    let started = false;
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v) || (log && v <= 0)) return;
      if (started) ctx.lineTo(X(xs[i]), Y(v)); else { ctx.moveTo(X(xs[i]), Y(v)); started = true; }
    });
    ctx.stroke();
  }
  if (hover !== null) {
    let best = 0;
    xs.forEach((x, i) => { if (Math.abs(X(x) - hover) < Math.abs(X(xs[best]) - hover)) best = i; });
    ctx.strokeStyle = 'rgba(0,0,0,.3)';
    ctx.beginPath(); ctx.moveTo(X(xs[best]), 0); ctx.lineTo(X(xs[best]), h); ctx.stroke();
    return best;
  }
  return null;
}
