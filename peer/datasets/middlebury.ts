import { open, readdir, readFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Camera } from '../jobs/vertex/camera.ts'
import { DatasetError } from '../protocol/errors.ts'
import type { Frame } from '../jobs/vertex/block.ts'
import type { BoundingBox } from '../jobs/vertex/target-space.ts'

/** A calibrated multi-view data set: one frame per camera, all at moment 0. */
export interface MultiViewDataset {
  readonly name: string
  readonly dir: string
  readonly cameras: Camera[]
  readonly frames: Frame[]
  readonly box: BoundingBox
}

/**
 * Loads a data set in the Middlebury multi-view format: `<name>_par.txt` (first line the image
 * count, then per image `file k11..k33 r11..r33 t1 t2 t3`, P = K[R t], origin top-left) beside
 * the images. The bounding box comes from `box` or from the two "(x y z)" lines of README.txt.
 */
export async function loadMiddlebury(
  dir: string,
  options: { box?: BoundingBox } = {},
): Promise<MultiViewDataset> {
  const root = resolve(dir)
  let entries: string[]
  try {
    entries = await readdir(root)
  } catch (cause) {
    throw new DatasetError(`cannot read data set folder ${root}: ${(cause as Error).message}`, { cause })
  }
  const parFile = entries.find((e) => e.endsWith('_par.txt'))
  if (parFile === undefined) throw new DatasetError(`${root} has no <name>_par.txt camera file`)
  const name = parFile.slice(0, -'_par.txt'.length)
  const cameras = parseParFile(await readFile(join(root, parFile), 'utf8'), parFile)
  for (const camera of cameras) {
    const size = await pngSize(join(root, `${camera.name}.png`))
    Object.assign(camera, size)
  }
  const box = options.box ?? parseReadmeBox(await readReadme(root, entries))
  const frames: Frame[] = cameras.map((camera) => ({
    cameraId: camera.id,
    index: 0,
    captureTime: 0,
    imageUrl: pathToFileURL(join(root, `${camera.name}.png`)).href,
  }))
  return { name, dir: root, cameras, frames, box }
}

/** Parses a `_par.txt` camera file; each error names the line. */
export function parseParFile(text: string, what = '_par.txt'): Camera[] {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
  const count = Number(lines[0])
  if (!Number.isInteger(count) || count < 1)
    throw new DatasetError(`${what}: first line must be the image count`)
  if (lines.length - 1 < count)
    throw new DatasetError(`${what}: announces ${count} images but lists ${lines.length - 1}`)
  const cameras: Camera[] = []
  for (let i = 0; i < count; i++) {
    const fields = lines[i + 1]!.split(/\s+/)
    if (fields.length !== 22)
      throw new DatasetError(`${what} line ${i + 2}: expected 22 fields, got ${fields.length}`)
    const numbers = fields.slice(1).map(Number)
    if (numbers.some((n) => !Number.isFinite(n)))
      throw new DatasetError(`${what} line ${i + 2}: a field is not a number`)
    const file = fields[0]!
    if (!file.endsWith('.png')) throw new DatasetError(`${what} line ${i + 2}: image ${file} is not a .png`)
    cameras.push({
      id: i,
      name: basename(file, '.png'),
      k: numbers.slice(0, 9),
      r: numbers.slice(9, 18),
      t: numbers.slice(18, 21),
      width: 0,
      height: 0,
    })
  }
  return cameras
}

/** Reads the box from the two "(x y z)" lines of a Middlebury README. */
export function parseReadmeBox(text: string): BoundingBox {
  const points = [...text.matchAll(/\(\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s*\)/g)].map(
    (m) => [Number(m[1]), Number(m[2]), Number(m[3])] as [number, number, number],
  )
  if (
    points.length < 2 ||
    points
      .slice(0, 2)
      .flat()
      .some((n) => !Number.isFinite(n))
  ) {
    throw new DatasetError(
      'README.txt has no two "(x y z)" bounding-box lines; pass --bbox x0,y0,z0,x1,y1,z1',
    )
  }
  const [a, b] = points as [[number, number, number], [number, number, number]]
  return {
    min: [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.min(a[2], b[2])],
    max: [Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.max(a[2], b[2])],
  }
}

/** Parses `x0,y0,z0,x1,y1,z1`. */
export function parseBox(text: string): BoundingBox {
  const n = text.split(',').map(Number)
  if (n.length !== 6 || n.some((v) => !Number.isFinite(v))) {
    throw new DatasetError(`--bbox must be six numbers x0,y0,z0,x1,y1,z1, got "${text}"`)
  }
  const box: BoundingBox = { min: [n[0]!, n[1]!, n[2]!], max: [n[3]!, n[4]!, n[5]!] }
  if (box.min.some((m, i) => m >= box.max[i]!))
    throw new DatasetError('--bbox: each min must be below its max')
  return box
}

async function readReadme(root: string, entries: string[]): Promise<string> {
  const readme = entries.find((e) => e.toLowerCase() === 'readme.txt')
  if (readme === undefined)
    throw new DatasetError(`${root} has no README.txt with a bounding box; pass --bbox`)
  return readFile(join(root, readme), 'utf8')
}

/** Width and height from a PNG's IHDR chunk, without decoding the image. */
async function pngSize(path: string): Promise<{ width: number; height: number }> {
  let header: Buffer
  try {
    const file = await open(path)
    try {
      header = Buffer.alloc(24)
      await file.read(header, 0, 24, 0)
    } finally {
      await file.close()
    }
  } catch (cause) {
    throw new DatasetError(`cannot read image ${path}: ${(cause as Error).message}`, { cause })
  }
  if (header.readUInt32BE(0) !== 0x89504e47 || header.toString('ascii', 12, 16) !== 'IHDR') {
    throw new DatasetError(`${path} is not a PNG`)
  }
  return { width: header.readUInt32BE(16), height: header.readUInt32BE(20) }
}
