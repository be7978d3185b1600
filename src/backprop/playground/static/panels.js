// The backward-pass panels: the chain rule for a neuron, the one-sample walk, a weight with its
// gradient check. Every number shown arrives from the server; `num` keeps the full value in
// data-value so that what is shown can be checked against the library.

import { fmt, sup, sub } from './util.js';

const F = { Tanh: 'tanh', Sigmoid: 'σ', ReLU: 'ReLU', Identity: 'f' };

export function num(v, digits = 5) {
  const cls = v < 0 ? 'neg' : 'pos';
  return `<span class="num ${cls}" data-value="${v}">${fmt(v, digits)}</span>`;
}

const vec = (vs, digits = 4) => `(${vs.map(v => num(v, digits)).join(', ')})`;

export function chainHTML(c, sample) {
  const l = c.layer, j = c.index, f = F[c.activation] || 'f';
  const where = `${sample.set} sample ${sample.index + 1}`;
  let html = `<div class="why">Neuron ${j + 1} of layer ${l}${c.output ? ' (output)' : ''}, for the ${where}.</div>`;
  html += `<div class="eq">z${sup(l)}${sub(j)} = Σₖ w${sup(l)}${sub(j)}ₖ a${sup(l - 1)}ₖ + b${sup(l)}${sub(j)} = ${num(c.z)}</div>`;
  html += `<div class="eq">a${sup(l)}${sub(j)} = ${f}(z${sup(l)}${sub(j)}) = ${num(c.a)}</div>`;
  if (c.output) {
    html += `<div class="eq">C = ${c.loss === 'Quadratic' ? '½‖aᴸ − y‖²' : '−Σⱼ yⱼ log softmax(aᴸ)ⱼ'} = ${num(c.cost)}</div>`;
    if (c.logits) {
      html += `<div class="eq">δᴸ${sub(j)} = softmax(aᴸ)${sub(j)} − y${sub(j)} = ${num(c.grad_a)} = <b>${num(c.delta)}</b></div>`;
      html += `<div class="why">aᴸ = zᴸ are logits: the softmax's Jacobian cancels its f′, so no σ′ factor slows learning.</div>`;
    } else {
      const grad = c.loss === 'Quadratic' ? `(a${sup('L')}${sub(j)} − y${sub(j)})` : `(∇ₐC)${sub(j)}`;
      html += `<div class="eq">δᴸ${sub(j)} = ${grad} · ${f}′(zᴸ${sub(j)}) = ${num(c.grad_a)} · ${num(c.fprime)} = <b>${num(c.delta)}</b></div>`;
      html += `<div class="why">${c.derivative}, y = ${fmt(c.target)}.`;
      if (c.activation === 'Sigmoid') html += ' With the quadratic cost the factor σ′(zᴸ) ≤ ¼ shrinks δᴸ wherever the output saturates: learning slows. Switch the loss to cross-entropy and the factor is gone.';
      html += '</div>';
    }
  } else {
    const terms = c.terms.map(t => `${num(t.w, 3)}·${num(t.delta, 3)}`).join(' + ');
    html += `<div class="eq">δ${sup(l)}${sub(j)} = ${f}′(z${sup(l)}${sub(j)}) Σₖ w${sup(l + 1)}ₖ${sub(j)} δ${sup(l + 1)}ₖ</div>`;
    html += `<div class="eq">&nbsp;&nbsp;&nbsp;= ${num(c.fprime)} · (${terms})</div>`;
    html += `<div class="eq">&nbsp;&nbsp;&nbsp;= ${num(c.fprime)} · ${num(c.sum)} = <b>${num(c.delta)}</b></div>`;
    html += `<div class="why">${c.derivative}</div>`;
  }
  html += `<div class="eq">∂C/∂b${sup(l)}${sub(j)} = δ${sup(l)}${sub(j)} = ${num(c.grad_b)}</div>`;
  html += '<table><tr><th>k</th><th>a' + sup(l - 1) + 'ₖ</th><th>∂C/∂w' + sup(l) + sub(j) + 'ₖ = δ' + sup(l) + sub(j) + ' a' + sup(l - 1) + 'ₖ</th></tr>';
  html += c.incoming.map(i => `<tr><td>${i.from + 1}</td><td>${num(i.a)}</td><td>${num(i.grad)}</td></tr>`).join('');
  return html + '</table>';
}

const STAGE_TITLES = {
  input: () => 'Input a⁰ = x', forward: s => `Forward, layer ${s.layer}: z${sup(s.layer)} = W${sup(s.layer)}a${sup(s.layer - 1)} + b${sup(s.layer)}, a${sup(s.layer)} = f(z${sup(s.layer)})`,
  cost: () => 'The cost C and ∇<sub>aᴸ</sub>C', delta: s => `Backward, layer ${s.layer}: δ${sup(s.layer)} = ∂C/∂z${sup(s.layer)}`,
  input_gradient: () => 'Down to the input: ∇ₓC = (W¹)ᵀ δ¹', update: () => 'The update Δθ',
};

export function walkHTML(walk, upTo) {
  let html = `<div class="why">Training sample ${walk.sample.index + 1}: one forward pass, one backward pass, one update.</div>`;
  walk.stages.slice(0, upTo + 1).forEach((s, i) => {
    html += `<div class="stage-name${i === upTo ? ' current' : ''}" data-stage="${s.stage}">${STAGE_TITLES[s.stage](s)}</div>`;
    if (i !== upTo) return;
    if (s.stage === 'input') html += `<div class="eq">a⁰ = ${vec(s.a)}</div>`;
    if (s.stage === 'forward') html += `<div class="eq">z${sup(s.layer)} = ${vec(s.z)}</div><div class="eq">a${sup(s.layer)} = ${vec(s.a)}</div>`;
    if (s.stage === 'cost') html += `<div class="eq">y = ${vec(s.target)}</div><div class="eq">C = ${num(s.cost)}</div><div class="eq">∇<sub>aᴸ</sub>C = ${vec(s.grad_a)}</div>`;
    if (s.stage === 'delta') {
      html += `<div class="eq">f′(z${sup(s.layer)}) = ${vec(s.fprime)}</div>`;
      html += `<div class="eq" id="walk_delta">δ${sup(s.layer)} = ${vec(s.delta, 6)}</div>`;
      html += `<div class="eq">∂C/∂b${sup(s.layer)} = δ${sup(s.layer)}; ∂C/∂W${sup(s.layer)} = δ${sup(s.layer)} (a${sup(s.layer - 1)})ᵀ:</div>`;
      html += matrix(s.grad_W);
    }
    if (s.stage === 'input_gradient') html += `<div class="eq">∇ₓC = ${vec(s.grad_x)}</div><div class="eq">∂C/∂(x₁, x₂) = ${vec(s.grad_plane)}</div>`;
    if (s.stage === 'update') {
      html += `<div class="why">${s.optimizer === 'sgd' ? `SGD: Δw = −η ∂C/∂w with η = ${fmt(s.learning_rate)}` : `${s.optimizer}: the change the optimizer applied`}</div>`;
      s.layers.forEach((u, l) => { html += `<div class="eq">ΔW${sup(l + 1)} =</div>${matrix(u.dW)}<div class="eq">Δb${sup(l + 1)} = ${vec(u.db)}</div>`; });
    }
  });
  return html;
}

function matrix(rows) {
  return `<table>${rows.map(r => `<tr>${r.map(v => `<td>${num(v, 3)}</td>`).join('')}</tr>`).join('')}</table>`;
}

export function gradcheckHTML(g) {
  const name = g.param === 'W' ? `w${sup(g.layer)}${sub(g.row)}${sub(g.col)}` : `b${sup(g.layer)}${sub(g.row)}`;
  const d1 = Math.abs(g.backprop - g.central_difference), d2 = Math.abs(g.backprop - g.reference);
  const scale = Math.max(Math.abs(g.backprop), 1e-12);
  const ok = d2 <= 1e-9 * Math.max(1, scale) && d1 <= 1e-5 * Math.max(1e-3, scale);
  return `<div class="why">∂C/∂${name} over ${g.over}:</div>
  <div class="checkrow"><span>backprop</span>${num(g.backprop, 12)}</div>
  <div class="checkrow"><span>central difference (ε = ${g.eps})</span>${num(g.central_difference, 12)}</div>
  <div class="checkrow"><span>per-parameter reference</span>${num(g.reference, 12)}</div>
  <div class="verdict ${ok ? 'ok' : 'bad'}">${ok ? '✓ they agree' : '✗ they differ'}: |backprop − difference| = ${fmt(d1, 2)}, |backprop − reference| = ${fmt(d2, 2)}</div>`;
}
