import qrcode from 'qrcode-generator'

/*
 * QR codes of join links: drawn on the console page for a screen at the venue, and in the terminal
 * by `crowdmesh start`. One encoder (qrcode-generator: no dependencies, the same code in Node and
 * the browser); error correction M, which survives a phone camera at an angle and a little glare.
 */

/** The QR code of `text`: `dark[row][column]`, without the quiet zone. */
export function qrModules(text: string): boolean[][] {
  const code = qrcode(0, 'M')
  code.addData(text, 'Byte')
  code.make()
  const n = code.getModuleCount()
  return Array.from({ length: n }, (_, row) => Array.from({ length: n }, (_, col) => code.isDark(row, col)))
}

/**
 * The QR code drawn with half blocks, two rows of modules per line of text, dark modules as the
 * terminal's background and light ones as its foreground inverted, with a quiet zone of 2 modules:
 * readable by a phone from a dark or a light terminal alike, since both colours are set.
 */
export function terminalQr(text: string): string {
  const modules = qrModules(text)
  const quiet = 2
  const size = modules.length + 2 * quiet
  const dark = (row: number, col: number) =>
    row >= quiet && col >= quiet && row < size - quiet && col < size - quiet
      ? modules[row - quiet]![col - quiet]!
      : false
  const lines: string[] = []
  for (let row = 0; row < size; row += 2) {
    let line = ''
    for (let col = 0; col < size; col++) {
      const top = dark(row, col)
      const bottom = row + 1 < size && dark(row + 1, col)
      // White on black: the upper half block's foreground is the top module, its background the bottom.
      line += top ? (bottom ? ' ' : '▄') : bottom ? '▀' : '█'
    }
    lines.push(`\x1b[97;40m${line}\x1b[0m`)
  }
  return lines.join('\n')
}
