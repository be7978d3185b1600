// Small formatting helpers shared by the page's modules.

// a number with `digits` significant digits; exponent notation for very small or large ones
export function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(Math.max(0, digits - 1));
  return Number(v.toPrecision(digits)).toString();
}

const SUP = { 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹', L: 'ᴸ', '-': '⁻' };
const SUB = { 0: '₀', 1: '₁', 2: '₂', 3: '₃', 4: '₄', 5: '₅', 6: '₆', 7: '₇', 8: '₈', 9: '₉' };
// a layer number as a superscript; a 0-based neuron index as a 1-based subscript
export const sup = n => String(n).split('').map(c => SUP[c] || c).join('');
export const sub = n => String(n + 1).split('').map(c => SUB[c] || c).join('');
