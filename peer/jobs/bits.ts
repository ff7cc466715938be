/** Bit helpers job kinds share (the depth sweep counts its cameras' masks with them). */

/** Set bits of a 32-bit value (SWAR). */
export function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555)
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff
}
