// The network diagram: neurons as small heatmaps (SVG links behind, canvases in front), the
// links' width and colour from the weights or their gradients, and a ring for each neuron's δ.

import { drawHeatmap, signColour } from './draw.js';
import { fmt, sup, sub } from './util.js';

const FEATURE_TEXT = { x1: 'X₁', x2: 'X₂', x1sq: 'X₁²', x2sq: 'X₂²', x1x2: 'X₁X₂', sinx1: 'sin X₁', sinx2: 'sin X₂' };
export const ALL_FEATURES = ['x1', 'x2', 'x1sq', 'x2sq', 'x1x2', 'sinx1', 'sinx2'];
const ROW = 50, TOP = 58, LEFT = 70, NODE = 40;

// |v| on a log scale from 1e-6 to 1, as a fraction 0..1
export function logScale(v, floor = 1e-6) {
  const a = Math.abs(v);
  if (!(a > floor)) return 0;
  return Math.min(1, (Math.log10(a) - Math.log10(floor)) / -Math.log10(floor));
}

export class NetworkView {
  constructor(root, svg, nodes, handlers) {
    this.root = root; this.svg = svg; this.nodes = nodes; this.h = handlers;
    this.structure = null;
  }

  // build the diagram for `config` (features, hidden, activations) and output width
  build(config, outputs) {
    const key = JSON.stringify([config.features, config.hidden, config.activations, outputs]);
    if (key === this.structure) return;
    this.structure = key;
    this.nodes.innerHTML = '';
    // the columns' spacing: as wide as fits, between 84 and 130 pixels
    const columns = config.hidden.length + 2;
    const avail = this.root.parentElement.clientWidth - 30;
    const COL = this.col = Math.max(84, Math.min(130, (avail - LEFT - NODE - 10) / (columns - 1)));
    this.cols = [];
    // column 0: every feature, switchable; used ones are the network's inputs
    const feats = ALL_FEATURES.map((f, i) => ({ kind: 'feature', name: f, on: config.features.includes(f), row: i }));
    this.cols.push(feats);
    config.hidden.forEach(w => this.cols.push(Array.from({ length: w }, (_, j) => ({ kind: 'hidden', row: j }))));
    this.cols.push(Array.from({ length: outputs }, (_, j) => ({ kind: 'output', row: j })));
    const height = Math.max(...this.cols.map(c => c.length)) * ROW + TOP + 10;
    this.root.style.height = `${height}px`;
    this.root.style.minWidth = `${LEFT + (this.cols.length - 1) * COL + NODE + 20}px`;
    this.svg.setAttribute('width', LEFT + (this.cols.length - 1) * COL + NODE + 20);
    this.svg.setAttribute('height', height);
    this.cols.forEach((col, c) => {
      const head = document.createElement('div');
      head.className = 'layerhead';
      head.style.left = `${LEFT + c * COL + NODE / 2 - (COL - 6) / 2}px`;
      head.style.width = `${COL - 6}px`;
      head.style.top = '0px';
      if (c === 0) head.innerHTML = 'layer 0<br>features';
      else if (c === this.cols.length - 1) head.innerHTML = `layer ${c}<br>output`;
      else {
        const act = config.activations[c - 1];
        head.innerHTML = `<div class="pm"><button data-act="minus">−</button> layer ${c} <button data-act="plus">+</button></div>`
          + `${col.length} neuron${col.length > 1 ? 's' : ''}<br><select>${['tanh', 'relu', 'sigmoid', 'linear']
            .map(a => `<option${a === act ? ' selected' : ''}>${a}</option>`).join('')}</select>`;
        head.querySelector('[data-act=minus]').onclick = () => this.h.neurons(c - 1, -1);
        head.querySelector('[data-act=plus]').onclick = () => this.h.neurons(c - 1, +1);
        head.querySelector('select').onchange = e => this.h.activation(c - 1, e.target.value);
      }
      this.nodes.appendChild(head);
      col.forEach((n, j) => {
        const el = document.createElement('div');
        el.className = `node ${n.kind}${n.kind === 'feature' && !n.on ? ' off' : ''}`;
        el.style.left = `${LEFT + c * COL}px`;
        el.style.top = `${TOP + j * ROW}px`;
        el.dataset.layer = c; el.dataset.index = j;
        if (n.kind === 'feature') el.id = `feature_${n.name}`;
        else el.id = `neuron_${c}_${j}`;
        const canvas = document.createElement('canvas');
        const zoom = document.createElement('canvas');
        zoom.className = 'zoom';
        el.appendChild(canvas); el.appendChild(zoom);
        if (n.kind === 'feature') {
          const label = document.createElement('span');
          label.className = 'label';
          label.textContent = FEATURE_TEXT[n.name];
          el.appendChild(label);
          el.onclick = () => this.h.feature(n.name);
        } else {
          el.onclick = () => this.h.neuron(c, j);
        }
        n.el = el; n.canvas = canvas; n.zoom = zoom;
        this.nodes.appendChild(el);
      });
    });
  }

  // positions of the inputs actually used: the network's layer 0
  inputs() { return this.cols[0].filter(n => n.on); }

  centre(c, n) { return [LEFT + c * this.col + NODE / 2, TOP + n.row * ROW + NODE / 2]; }

  // draw one frame: heatmaps, links, δ rings
  draw(frame, blob, view) {
    const r = frame.grid.resolution, size = r * r;
    const bytes = new Uint8Array(blob);
    const columns = [this.inputs(), ...this.cols.slice(1)];
    let offset = 0;
    columns.forEach(col => col.forEach(n => {
      const part = bytes.subarray(offset, offset + size);
      drawHeatmap(n.canvas, part, r, view);
      drawHeatmap(n.zoom, part, r, view);
      offset += size;
    }));
    this.cols[0].filter(n => !n.on).forEach(n => n.canvas.getContext('2d').clearRect(0, 0, n.canvas.width, n.canvas.height));
    this.drawLinks(frame, view);
  }

  drawLinks(frame, view) {
    const ns = 'http://www.w3.org/2000/svg';
    this.svg.innerHTML = '';
    const columns = [this.inputs(), ...this.cols.slice(1)];
    const sampleDelta = view.deltaSource === 'sample' && frame.sample ? frame.sample.delta : null;
    frame.layers.forEach((layer, l) => {
      const values = view.links === 'grads' ? (sampleDelta ? frame.sample.grad_W[l] : layer.dW) : layer.W;
      values.forEach((row, j) => row.forEach((v, k) => {
        const from = columns[l][k], to = columns[l + 1][j];
        if (!from || !to) return;
        const [x0, y0] = this.centre(l, from), [x1, y1] = this.centre(l + 1, to);
        const path = document.createElementNS(ns, 'path');
        const mx = (x0 + x1) / 2;
        path.setAttribute('d', `M${x0 + NODE / 2},${y0} C${mx},${y0} ${mx},${y1} ${x1 - NODE / 2},${y1}`);
        const width = view.links === 'grads' ? 0.3 + 4 * logScale(v, 1e-6) : Math.min(8, 0.3 + Math.abs(v) * 1.6);
        path.setAttribute('stroke', signColour(v, 0.85));
        path.setAttribute('stroke-width', width.toFixed(2));
        path.setAttribute('class', 'link');
        path.id = `link_${l + 1}_${j}_${k}`;
        if (view.picked && view.picked.layer === l + 1 && view.picked.row === j && view.picked.col === k) path.classList.add('picked');
        const title = document.createElementNS(ns, 'title');
        title.textContent = `w${sup(l + 1)}${sub(j)}${sub(k)} = ${fmt(layer.W[j][k], 6)}\n∂C/∂w = ${fmt(layer.dW[j][k], 6)}`;
        path.appendChild(title);
        path.addEventListener('click', e => { e.stopPropagation(); this.h.link(l + 1, j, k); });
        this.svg.appendChild(path);
      }));
      // δ rings on the layer's neurons: colour the sign, thickness |δ| (log scale)
      const deltas = sampleDelta ? sampleDelta[l] : layer.db;
      deltas.forEach((d, j) => {
        const n = columns[l + 1][j];
        if (!n) return;
        const [cx, cy] = this.centre(l + 1, n);
        const ring = document.createElementNS(ns, 'circle');
        const t = logScale(d);
        ring.setAttribute('cx', cx); ring.setAttribute('cy', cy);
        ring.setAttribute('r', (NODE / 2 + 2 + 3 * t).toFixed(1));
        ring.setAttribute('stroke', signColour(d, 0.25 + 0.75 * t));
        ring.setAttribute('stroke-width', (0.5 + 3.5 * t).toFixed(1));
        ring.setAttribute('class', 'ring');
        this.svg.appendChild(ring);
        n.el.title = `δ${sup(l + 1)}${sub(j)} = ${fmt(d, 6)}   b = ${fmt(layer.b[j], 6)}`;
        n.el.dataset.delta = d;
      });
    });
  }

  mark(cls, layer, index) {
    this.nodes.querySelectorAll(`.${cls}`).forEach(e => e.classList.remove(cls));
    if (layer === null) return;
    const col = layer === 0 ? this.inputs() : this.cols[layer];
    (index === null ? col : [col[index]]).forEach(n => n && n.el.classList.add(cls));
  }
}
