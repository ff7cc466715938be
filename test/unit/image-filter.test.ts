import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { JobSpec, WorkerEnv } from '../../peer/jobs/kind.ts'
import {
  type FilteredImage,
  type ImageFilterJob,
  imageFilterKind,
  type ImageTask,
  type ImageTaskResult,
} from '../../peer/jobs/image-filter/index.ts'
import { bilateralTables, filterRect, separableTaps } from '../../peer/jobs/image-filter/filter.ts'
import type { ImageFilter } from '../../peer/jobs/image-filter/schemas.ts'
import { type FrameImage, frameImage } from '../../peer/participant/frame-image.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import { templeDir } from '../support/fixtures.ts'

const kind = imageFilterKind
const named = (name: string) => expect.objectContaining({ name })

function spec(description: ImageFilterJob, jobId = 'filter'): JobSpec<ImageFilterJob> {
  return { jobId, kind: kind.name, version: kind.version, description }
}

const gaussian = (radius: number, sigma: number): ImageFilter => ({ type: 'gaussian', radius, sigma })

/** Every task of a round, cut with the sizes of `sizes` in turn. */
function cutAll(
  job: JobSpec<ImageFilterJob>,
  width: number,
  height: number,
  sizes: number[],
  imageUrl = 'mem:image',
): ImageTask[] {
  const plan = kind.openRound(job, 0, 0)
  plan.addInput({ imageUrl, width, height })
  const tasks: ImageTask[] = []
  for (
    let task = plan.cut(sizes[0]!);
    task !== undefined;
    task = plan.cut(sizes[tasks.length % sizes.length]!)
  ) {
    tasks.push(task)
  }
  return tasks
}

/** A seeded random RGBA image with some structure (gradients plus noise), so blurs change it. */
function noiseImage(width: number, height: number, seed: number): FrameImage {
  const rgba = new Uint8Array(width * height * 4)
  let s = seed >>> 0
  for (let i = 0; i < rgba.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    const p = i >> 2
    const structure = ((p % width) * 3 + Math.floor(p / width) * 5 + (i & 3) * 60) & 255
    rgba[i] = (structure + (s >>> 26)) & 255
  }
  return frameImage(width, height, rgba)
}

/** The pixels of a rectangle of an image, row-major. */
function copyRect(image: FrameImage, rect: { x: number; y: number; w: number; h: number }): Uint8Array {
  const out = new Uint8Array(rect.w * rect.h * 4)
  for (let j = 0; j < rect.h; j++) {
    const start = ((rect.y + j) * image.width + rect.x) * 4
    out.set(image.rgba.subarray(start, start + rect.w * 4), j * rect.w * 4)
  }
  return out
}

/** A frame source holding images in memory (the worker's injected part). */
function memoryFrames(images: Map<string, FrameImage>): WorkerEnv {
  return {
    frames: {
      get: (url) => {
        const image = images.get(url)
        return image === undefined ? Promise.reject(new Error(`no image ${url}`)) : Promise.resolve(image)
      },
      get size() {
        return images.size
      },
    },
  }
}

describe('image-filter round plans', () => {
  it('have no units and no tasks until their image arrives, and take it once', () => {
    const plan = kind.openRound(spec({ filter: gaussian(2, 1), tile: 64 }), 3, 0)
    expect(plan.totalUnits).toBe(0)
    expect(plan.inputsComplete).toBe(false)
    expect(plan.cut(1000)).toBeUndefined()
    expect(plan.addInput({ imageUrl: 'mem:a', width: 100, height: 50 })).toBe(true)
    expect(plan.totalUnits).toBe(5000)
    expect(plan.inputsComplete).toBe(true)
    expect(plan.addInput({ imageUrl: 'mem:b', width: 10, height: 10 })).toBe(false)
    expect(plan.totalUnits).toBe(5000)
    expect(plan.cut(1 << 20)).toMatchObject({ frameIndex: 3, imageUrl: 'mem:a', x: 0, y: 0, w: 64, h: 50 })
  })

  it('refuse an input the job cannot take, by field', () => {
    const plan = kind.openRound(spec({ filter: gaussian(2, 1), tile: 64 }), 0, 0)
    const bad: [unknown, string][] = [
      [{ imageUrl: 'mem:a', width: 0, height: 5 }, 'width'],
      [{ imageUrl: 'mem:a', width: 16385, height: 5 }, 'width'],
      [{ imageUrl: 'mem:a', width: 2.5, height: 5 }, 'width'],
      [{ imageUrl: 'mem:a', width: 16384, height: 16384 }, 'height'],
      [{ imageUrl: 'x'.repeat(4097), width: 5, height: 5 }, 'imageUrl'],
      [{ imageUrl: 'mem:a', width: 5, height: 5, extra: 1 }, '(root)'],
      [{ width: 5, height: 5 }, 'imageUrl'],
      ['mem:a', '(root)'],
    ]
    for (const [input, field] of bad) {
      expect(() => plan.addInput(input), JSON.stringify(input)?.slice(0, 80)).toThrow(
        expect.objectContaining({ name: 'InvalidMessageError', field }),
      )
    }
    expect(plan.inputsComplete).toBe(false)
  })

  it('tile the image exactly, one tile at most per task, for any sequence of task sizes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 260 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 32, max: 96 }),
        fc.array(fc.integer({ min: 1, max: 12_000 }), { minLength: 1, maxLength: 8 }),
        (width, height, tile, sizes) => {
          const job = spec({ filter: gaussian(1, 1), tile })
          const plan = kind.openRound(job, 7, 0)
          plan.addInput({ imageUrl: 'mem:image', width, height })
          const covered = new Uint8Array(width * height)
          let cut = 0
          for (let n = 0; ; n++) {
            const size = sizes[n % sizes.length]!
            const task = plan.cut(size)
            if (task === undefined) break
            // Whatever the plan cuts is a task the wire accepts.
            expect(kind.schemas.task.parse(task)).toEqual(task)
            expect(kind.taskUnits(task)).toBe(task.w * task.h)
            expect(kind.taskUnits(task)).toBeLessThanOrEqual(size)
            expect(Math.floor(task.x / tile)).toBe(Math.floor((task.x + task.w - 1) / tile))
            expect(Math.floor(task.y / tile)).toBe(Math.floor((task.y + task.h - 1) / tile))
            for (let y = task.y; y < task.y + task.h; y++) {
              for (let x = task.x; x < task.x + task.w; x++) covered[y * width + x]!++
            }
            cut += kind.taskUnits(task)
            expect(plan.unitsLeft()).toBe(width * height - cut)
          }
          expect(plan.unitsLeft()).toBe(0)
          expect(covered.every((c) => c === 1)).toBe(true)
        },
      ),
      { numRuns: 200 },
    )
  })

  it('give spans that never overlap and together cover every lane and the round’s units', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 32, max: 128 }),
        fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 6 }),
        (width, height, tile, sizes) => {
          const tasks = cutAll(spec({ filter: gaussian(1, 1), tile }), width, height, sizes)
          const lanes = new Map<number, [number, number][]>()
          for (const task of tasks) {
            const span = kind.taskSpan(task)
            expect(span.count).toBe(kind.taskUnits(task))
            lanes.set(span.lane, [...(lanes.get(span.lane) ?? []), [span.first, span.count]])
          }
          let total = 0
          for (const [lane, spans] of lanes) {
            // Sorted by start, each span begins where the one before ended: no overlap, no gap.
            spans.sort((a, b) => a[0] - b[0])
            let next = 0
            for (const [first, count] of spans) {
              expect(first).toBe(next)
              next = first + count
            }
            expect(next).toBe(width * Math.min(tile, height - lane * tile))
            total += next
          }
          expect(lanes.size).toBe(Math.ceil(height / tile))
          expect(total).toBe(width * height)
          expect(new Set(tasks.map((t) => kind.taskKey(t))).size).toBe(tasks.length)
        },
      ),
      { numRuns: 200 },
    )
  })
})

describe('image-filter job descriptions and tasks on the wire', () => {
  it('accept the filters and tiles in range and refuse anything else', () => {
    const ok: ImageFilterJob[] = [
      { filter: gaussian(1, 0.5), tile: 32 },
      { filter: { type: 'box', radius: 8 }, tile: 1024 },
      { filter: { type: 'bilateral', radius: 3, sigmaSpace: 2, sigmaRange: 25 }, tile: 256 },
    ]
    for (const job of ok) expect(kind.schemas.job.parse(job)).toEqual(job)
    const bad = [
      { filter: gaussian(9, 1), tile: 256 },
      { filter: gaussian(0, 1), tile: 256 },
      { filter: gaussian(2, 0), tile: 256 },
      { filter: gaussian(2, 16.5), tile: 256 },
      { filter: gaussian(2, 1), tile: 31 },
      { filter: gaussian(2, 1), tile: 2048 },
      { filter: { type: 'median', radius: 2 }, tile: 256 },
      { filter: { type: 'box', radius: 2, sigma: 1 }, tile: 256 },
      { filter: gaussian(2, 1), tile: 256, extra: true },
      { filter: gaussian(2, 1) },
    ]
    for (const job of bad) expect(kind.schemas.job.safeParse(job).success, JSON.stringify(job)).toBe(false)
  })

  it('refuse tasks of shapes the plan never cuts', () => {
    const base = { jobId: 'j', frameIndex: 0, imageUrl: 'mem:a', width: 100, height: 100, tile: 64 }
    expect(kind.schemas.task.safeParse({ ...base, x: 64, y: 0, w: 36, h: 10 }).success).toBe(true)
    expect(kind.schemas.task.safeParse({ ...base, x: 10, y: 3, w: 20, h: 1 }).success).toBe(true)
    const bad = [
      { x: 60, y: 0, w: 10, h: 1 }, // across two tiles
      { x: 0, y: 60, w: 64, h: 10 }, // across two bands
      { x: 10, y: 0, w: 20, h: 2 }, // several rows, not the tile's width
      { x: 64, y: 0, w: 40, h: 1 }, // past the image
      { x: 0, y: 0, w: 0, h: 1 },
    ]
    for (const rect of bad) expect(kind.schemas.task.safeParse({ ...base, ...rect }).success).toBe(false)
  })
})

describe('image-filter results', () => {
  const job = spec({ filter: gaussian(2, 1), tile: 64 }, 'jöb-ü')
  const task = cutAll(job, 100, 70, [1000])[1]!
  const result: ImageTaskResult = {
    ...kind.simulation.fakeResult(task),
    rgba: Uint8Array.from({ length: task.w * task.h * 4 }, (_, i) => i * 7),
  }

  it('encode to exactly maxResultBytes and decode to the same result', () => {
    const bytes = kind.result.encode(result)
    expect(bytes.length).toBe(kind.limits.maxResultBytes(task))
    expect(kind.result.decode(bytes, task)).toEqual(result)
  })

  it('match the task they were computed for, and only it', () => {
    expect(kind.result.matches(task, result)).toBe(true)
    expect(kind.result.matches(task, { ...result, y: result.y + 1 })).toBe(false)
    expect(kind.result.matches(task, { ...result, jobId: 'other' })).toBe(false)
    expect(kind.result.matches(task, { ...result, rgba: result.rgba.subarray(4) })).toBe(false)
    expect(kind.result.matches({ ...task, frameIndex: 1 }, result)).toBe(false)
  })

  it('refuse a result of the wrong length or of another task, naming the field', () => {
    const bytes = kind.result.encode(result)
    const refusals: [Uint8Array, ImageTask, string][] = [
      [bytes.subarray(0, bytes.length - 1), task, 'length'],
      [Uint8Array.of(...bytes, 0), task, 'length'],
      [bytes.subarray(0, 2), task, 'length'],
      [kind.result.encode({ ...result, x: result.x + 1 }), task, 'x'],
      [kind.result.encode({ ...result, frameIndex: 9 }), task, 'frameIndex'],
      [kind.result.encode({ ...result, jobId: 'jöb-v' }), task, 'jobId'],
      [bytes, { ...task, h: task.h - 1 }, 'length'],
      [Uint8Array.of(2, ...bytes.subarray(1)), task, 'format'],
    ]
    for (const [wrong, against, field] of refusals) {
      expect(() => kind.result.decode(wrong, against), field).toThrow(
        expect.objectContaining({ name: 'InvalidMessageError', field }),
      )
    }
  })
})

describe('image-filter sinks', () => {
  const width = 150
  const height = 110
  const image = noiseImage(width, height, 42)
  const url = 'mem:noise'
  const env = memoryFrames(new Map([[url, image]]))
  const filters: ImageFilter[] = [
    gaussian(3, 1.5),
    gaussian(8, 16),
    { type: 'box', radius: 2 },
    { type: 'bilateral', radius: 2, sigmaSpace: 1.5, sigmaRange: 30 },
  ]

  async function round(filter: ImageFilter, sizes: number[]) {
    const job = spec({ filter, tile: 48 })
    const plan = kind.openRound(job, 0, 0)
    plan.addInput({ imageUrl: url, width, height })
    const sink = kind.openSink(job, plan, 0)
    const worker = await kind.workers.cpu(env)
    const done: { task: ImageTask; result: ImageTaskResult }[] = []
    for (
      let task = plan.cut(sizes[0]!);
      task !== undefined;
      task = plan.cut(sizes[done.length % sizes.length]!)
    ) {
      done.push({ task, result: await worker.run(job, task) })
    }
    return { job, plan, sink, done }
  }

  for (const filter of filters) {
    it(`stitch tiles into the image filtered whole (${filter.type}, radius ${filter.radius})`, async () => {
      const { sink, done } = await round(filter, [48 * 48, 700, 31, 5000])
      // Results arrive in any order.
      const order = done.map((_, i) => i).sort((a, b) => ((a * 7919) % 13) - ((b * 7919) % 13))
      for (const i of order) {
        expect(sink.complete).toBe(false)
        expect(sink.add(done[i]!.task, done[i]!.result)).toBe('added')
      }
      expect(sink.complete).toBe(true)
      const whole = filterRect(image, filter, { x: 0, y: 0, w: width, h: height })
      const outcome = await sink.finish()
      expect(outcome).toMatchObject({ frameIndex: 0, width, height })
      expect(Buffer.compare(outcome.rgba, whole)).toBe(0)
      // The filter changed the image (a stitching bug would not hide behind an identity).
      expect(Buffer.compare(outcome.rgba, image.rgba)).not.toBe(0)
    })
  }

  it('count a duplicate once, refuse overlaps and strangers without changing anything', async () => {
    const { job, plan, sink, done } = await round(gaussian(2, 1), [48 * 20])
    const [first, second] = done
    expect(sink.add(first!.task, first!.result)).toBe('added')
    expect(sink.add(first!.task, first!.result)).toBe('duplicate')
    // A rectangle overlapping the first one partly (one row further down).
    const shifted: ImageTask = { ...first!.task, y: first!.task.y + 1 }
    const shiftedResult = { ...first!.result, y: shifted.y }
    expect(() => sink.add(shifted, shiftedResult)).toThrow(named('BlockMismatchError'))
    const outside: ImageTask = { ...first!.task, y: height - 5 }
    expect(() => sink.add(outside, { ...first!.result, y: outside.y })).toThrow(named('BlockMismatchError'))
    expect(() => sink.add({ ...second!.task, frameIndex: 1 }, second!.result)).toThrow(
      named('BlockMismatchError'),
    )
    expect(() => sink.add({ ...second!.task, jobId: 'other' }, second!.result)).toThrow(
      named('BlockMismatchError'),
    )
    expect(() => sink.add(second!.task, first!.result)).toThrow(named('InvalidMessageError'))
    const short = { ...second!.result, rgba: second!.result.rgba.subarray(4) }
    expect(() => sink.add(second!.task, short)).toThrow(named('InvalidMessageError'))
    expect(() => sink.finish()).toThrow(named('BlockMismatchError'))
    // None of the refusals counted a pixel: the rest of the round still completes exactly.
    for (const { task, result } of done.slice(1)) expect(sink.add(task, result)).toBe('added')
    expect(sink.complete).toBe(true)
    expect(
      Buffer.compare(
        (await sink.finish()).rgba,
        filterRect(image, job.description.filter, { x: 0, y: 0, w: width, h: height }),
      ),
    ).toBe(0)
    expect(plan.unitsLeft()).toBe(0)
  })
})

describe('image-filter outcomes on the gossip', () => {
  const image = noiseImage(300, 200, 7)
  const outcome: FilteredImage = { frameIndex: 12, width: 300, height: 200, rgba: image.rgba }
  const job = spec({ filter: gaussian(2, 1), tile: 64 })

  it('send a small image whole and a large one as a thumbnail that fits, and read both back', () => {
    const whole = kind.outcome.decode(kind.outcome.encode(outcome, job, 1 << 20))
    expect(whole).toMatchObject({
      frameIndex: 12,
      width: 300,
      height: 200,
      imageWidth: 300,
      imageHeight: 200,
    })
    expect(Buffer.compare(whole.rgba, outcome.rgba)).toBe(0)
    for (const maxBytes of [64 * 1024, 10_000, 200, 17]) {
      const bytes = kind.outcome.encode(outcome, job, maxBytes)
      expect(bytes.length).toBeLessThanOrEqual(maxBytes)
      const thumbnail = kind.outcome.decode(bytes)
      expect(thumbnail.frameIndex).toBe(12)
      expect(thumbnail.width).toBeLessThanOrEqual(300)
      expect(thumbnail.rgba.length).toBe(thumbnail.width * thumbnail.height * 4)
      // The aspect survives within a pixel's rounding.
      expect(Math.abs(thumbnail.width / thumbnail.height - 1.5)).toBeLessThan(
        1.5 / Math.min(thumbnail.height, 10),
      )
      expect(kind.outcome.summary(thumbnail).items).toBe(300 * 200)
    }
    expect(() => kind.outcome.encode(outcome, job, 16)).toThrow(named('InvalidOptionError'))
  })

  it('average each thumbnail pixel over its source area', () => {
    const flat: FilteredImage = {
      frameIndex: 0,
      width: 4,
      height: 2,
      rgba: Uint8Array.of(
        0,
        0,
        0,
        255,
        10,
        20,
        30,
        255,
        100,
        100,
        100,
        255,
        200,
        200,
        200,
        255,
        1,
        1,
        1,
        255,
        11,
        21,
        31,
        255,
        101,
        101,
        101,
        255,
        201,
        201,
        201,
        255,
      ),
    }
    const half = kind.outcome.decode(kind.outcome.encode(flat, job, 13 + 2 * 4))
    expect([half.width, half.height]).toEqual([2, 1])
    // Means of 0,10,1,11 → 5.5 → 6; of 100,200,101,201 → 150.5 → 151 (half up).
    expect([...half.rgba]).toEqual([6, 11, 16, 255, 151, 151, 151, 255])
  })

  it('refuse malformed bytes, naming the field', () => {
    const bytes = kind.outcome.encode(outcome, job, 10_000)
    /** The thumbnail with some u16 header fields (by byte offset) changed. */
    const patched = (fields: Record<number, number>) => {
      const copy = bytes.slice()
      const view = new DataView(copy.buffer)
      for (const [offset, value] of Object.entries(fields)) view.setUint16(Number(offset), value, true)
      return copy
    }
    const badFormat = bytes.slice()
    badFormat[0] = 2
    const refusals: [Uint8Array, string][] = [
      [bytes.subarray(0, 12), 'length'],
      [bytes.subarray(0, bytes.length - 1), 'length'],
      [Uint8Array.of(...bytes, 0), 'length'],
      [badFormat, 'format'],
      [patched({ 5: 0 }), 'imageWidth'],
      [patched({ 5: 20_000 }), 'imageWidth'],
      [patched({ 7: 0 }), 'imageHeight'],
      [patched({ 5: 16384, 7: 16384 }), 'imageHeight'],
      [patched({ 9: 0 }), 'width'],
      [patched({ 9: 301 }), 'width'],
      [patched({ 11: 201 }), 'height'],
    ]
    for (const [wrong, field] of refusals) {
      expect(() => kind.outcome.decode(wrong), field).toThrow(
        expect.objectContaining({ name: 'InvalidMessageError', field }),
      )
    }
  })

  it('never take random bytes for anything but a well-formed thumbnail', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          const t = kind.outcome.decode(bytes)
          expect(t.rgba.length).toBe(t.width * t.height * 4)
          expect(t.width).toBeLessThanOrEqual(t.imageWidth)
        } catch (error) {
          expect((error as Error).name).toBe('InvalidMessageError')
        }
      }),
    )
  })
})

describe('the image-filter simulation helpers', () => {
  it('describe a job whose rounds hold about the units asked for, with results of the right size', () => {
    const description = kind.simulation.job('sim', 250_000)
    expect(kind.schemas.job.parse(description)).toEqual({ filter: gaussian(2, 1), tile: 256 })
    const job = spec(description, 'sim')
    const inputs = kind.simulation.inputs(job, 4, 250_000)
    expect(inputs).toEqual([{ imageUrl: 'sim:image/4', width: 500, height: 500 }])
    const plan = kind.openRound(job, 4, 0)
    expect(plan.addInput(inputs[0])).toBe(true)
    expect(plan.totalUnits).toBe(250_000)
    const task = plan.cut(kind.cost.calibrationUnits)!
    expect(kind.result.encode(kind.simulation.fakeResult(task)).length).toBe(kind.limits.maxResultBytes(task))
  })
})

describe('the image-filter CPU filter on a temple image', () => {
  const file = readdirSync(templeDir)
    .filter((f) => f.endsWith('.png'))
    .sort()[0]!
  const imageUrl = pathToFileURL(join(templeDir, file)).href

  /** The 2D weights as floats and a plain convolution over clamped coordinates, rounded at the end. */
  function reference(
    img: FrameImage,
    filter: ImageFilter,
    rect: { x: number; y: number; w: number; h: number },
  ) {
    const r = filter.radius
    const at = (x: number, y: number, c: number) =>
      img.rgba[
        (Math.min(img.height - 1, Math.max(0, y)) * img.width + Math.min(img.width - 1, Math.max(0, x))) * 4 +
          c
      ]!
    const out = new Uint8Array(rect.w * rect.h * 4)
    let weightOf: (dx: number, dy: number, v: number, centre: number) => number
    if (filter.type === 'bilateral') {
      const t = bilateralTables(filter)
      weightOf = (dx, dy, v, centre) => t.space[dx * dx + dy * dy]! * t.range[Math.abs(v - centre)]!
    } else {
      const t = separableTaps(filter)
      weightOf = (dx, dy) => (t.taps[dx + r]! * t.taps[dy + r]!) / (t.sum * t.sum)
    }
    for (let j = 0; j < rect.h; j++) {
      for (let i = 0; i < rect.w; i++) {
        for (let c = 0; c < 4; c++) {
          const centre = at(rect.x + i, rect.y + j, c)
          let sum = 0
          let weights = 0
          for (let dy = -r; dy <= r; dy++) {
            for (let dx = -r; dx <= r; dx++) {
              const v = at(rect.x + i + dx, rect.y + j + dy, c)
              const w = weightOf(dx, dy, v, centre)
              sum += w * v
              weights += w
            }
          }
          out[(j * rect.w + i) * 4 + c] = Math.round(sum / weights)
        }
      }
    }
    return out
  }

  const cases: ImageFilter[] = [
    gaussian(3, 1.5),
    gaussian(8, 4),
    { type: 'box', radius: 4 },
    { type: 'bilateral', radius: 3, sigmaSpace: 2, sigmaRange: 20 },
  ]
  for (const filter of cases) {
    it(`equals a naive 2D convolution within ±1 at corners, edges and inside (${filter.type}, r ${filter.radius})`, async () => {
      const worker = await kind.workers.cpu({ frames: frameSource() })
      const image = await frameSource().get(imageUrl)
      const job = spec({ filter, tile: 96 })
      const tasks = cutAll(job, image.width, image.height, [96 * 96], imageUrl)
      // The top-left and bottom-right tiles (two image borders each), one on the top edge, one inside.
      const picked = [tasks[0]!, tasks[2]!, tasks[Math.floor(tasks.length / 2) + 1]!, tasks.at(-1)!]
      let maxDiff = 0
      let exact = 0
      let channels = 0
      let changed = 0
      for (const task of picked) {
        const got = (await worker.run(job, task)).rgba
        const want = reference(image, filter, task)
        const before = copyRect(image, task)
        channels += want.length
        for (let k = 0; k < want.length; k++) {
          maxDiff = Math.max(maxDiff, Math.abs(got[k]! - want[k]!))
          if (got[k] === want[k]) exact++
          if (got[k] !== before[k]) changed++
        }
      }
      expect(maxDiff).toBeLessThanOrEqual(1)
      // Both add the same integer weights and round half up, so beyond the ±1 contract they agree
      // nearly everywhere: a rounding slip (truncating, say) shows here long before it breaks ±1.
      expect(exact / channels).toBeGreaterThan(0.999)
      expect(changed).toBeGreaterThan(1000)
    })
  }

  it('uses Gaussian taps that sum to 256, are symmetric and follow the curve within one', () => {
    for (const [radius, sigma] of [
      [1, 0.3],
      [2, 1],
      [8, 2],
      [8, 16],
    ] as const) {
      const { taps, sum } = separableTaps({ type: 'gaussian', radius, sigma })
      expect(taps.reduce((a, b) => a + b, 0)).toBe(sum)
      const curve = Array.from(taps, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)))
      const area = curve.reduce((a, b) => a + b, 0)
      taps.forEach((t, i) => {
        expect(t).toBe(taps[taps.length - 1 - i])
        expect(Math.abs(t - (256 * curve[i]!) / area)).toBeLessThanOrEqual(i === radius ? radius + 1 : 0.5)
      })
    }
  })
})

describe('image-filter validation (README, "Trust")', () => {
  const image = noiseImage(90, 60, 7)
  const env = memoryFrames(new Map([['mem:image', image]]))
  const validator = kind.validation!
  for (const filter of [
    gaussian(2, 1),
    { type: 'bilateral', radius: 2, sigmaSpace: 2, sigmaRange: 30 } as const,
  ]) {
    it(`passes the CPU result and one off by 1 everywhere, refutes one pixel off by 2 and names it (${filter.type})`, async () => {
      const job = spec({ filter, tile: 32 })
      const task = cutAll(job, 90, 60, [700])[2]!
      const honest = await (await kind.workers.cpu(env)).run(job, task)
      const checker = validator.checker!(job, env)!
      const every = Array.from({ length: task.w * task.h }, (_, i) => i)
      expect(await checker.check(task, honest, every)).toEqual({ ok: true })
      const nudged = { ...honest, rgba: honest.rgba.map((v) => (v === 255 ? 254 : v + 1)) }
      expect(await checker.check(task, nudged, every)).toEqual({ ok: true })
      expect(validator.agree(task, honest, nudged)).toBe(true)
      const wrong = { ...honest, rgba: honest.rgba.slice() }
      const at = task.w + 3
      wrong.rgba[at * 4 + 1] = (wrong.rgba[at * 4 + 1]! + 2) % 256
      const verdict = await checker.check(task, wrong, every)
      expect(verdict).toMatchObject({ ok: false, unit: at })
      expect(verdict.ok === false && verdict.reason).toMatch(new RegExp(`pixel ${task.x + 3},${task.y + 1} `))
      // A sample that misses the pixel passes; the comparison with another copy finds it.
      expect(await checker.check(task, wrong, [0, 1, 2])).toEqual({ ok: true })
      expect(validator.disputed(task, honest, wrong, 8)).toEqual([at])
    })
  }
})
