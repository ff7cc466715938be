import { z } from 'zod'

/*
 * What the image-filter kind sends over the wire: the job description, a round's input (one image)
 * and a task (one output rectangle). Every bound is here, so the rest of the kind can trust a parsed
 * value; the types are derived from the schemas, never written beside them.
 */

/** Largest image side, pixels (a WebGL texture and a u32 header field both hold it). */
export const maxImageSide = 16384
/** Largest image, pixels (64 Mpx): the sink holds its RGBA and a coverage byte per pixel. */
export const maxImagePixels = 64 * 1024 * 1024
/** Largest filter radius: the WebGL shader unrolls (2r+1)² taps, and integer sums stay below 2^24. */
export const maxRadius = 8
/** Smallest and largest tile side, pixels: a task never spans two tiles. */
export const minTile = 32
export const maxTile = 1024
/** Largest task, units (output pixels): one whole tile of the largest size. */
export const maxTaskPixels = maxTile * maxTile

const radius = z.number().int().min(1).max(maxRadius)
/** A Gaussian width: above 0 (a zero sigma has no kernel), at most 16 (flatter is a box filter). */
const sigma = z.number().gt(0).max(16)
const side = z.number().int().min(1).max(maxImageSide)
const position = z
  .number()
  .int()
  .min(0)
  .max(maxImageSide - 1)
/** Rounds are numbered in a u32 field of the result header. */
const frameIndex = z.number().int().min(0).max(0xffff_ffff)
/** Any scheme the worker's frame source can fetch (the frame source refuses the others). */
const imageUrl = z.string().min(1).max(4096)

/** A Gaussian blur, separable, with integer taps (see `filter.ts`). */
export const gaussianFilterSchema = z.strictObject({ type: z.literal('gaussian'), radius, sigma })
/** The mean of the (2r+1)² window, separable. */
export const boxFilterSchema = z.strictObject({ type: z.literal('box'), radius })
/** Edge-preserving blur: a Gaussian in space times a Gaussian of each channel's difference to the centre. */
export const bilateralFilterSchema = z.strictObject({
  type: z.literal('bilateral'),
  radius,
  sigmaSpace: sigma,
  /** In channel levels (0..255). */
  sigmaRange: z.number().gt(0).max(255),
})

/** One of the filters a job may ask for. */
export const filterSchema = z.discriminatedUnion('type', [
  gaussianFilterSchema,
  boxFilterSchema,
  bilateralFilterSchema,
])
/** A filter a job asks for. */
export type ImageFilter = z.infer<typeof filterSchema>
/** The filters computed as two 1D passes of integer taps. */
export type SeparableFilter = z.infer<typeof gaussianFilterSchema> | z.infer<typeof boxFilterSchema>
/** The edge-preserving filter. */
export type BilateralFilter = z.infer<typeof bilateralFilterSchema>

/** The job description: which filter, and the tile side tasks are cut within. */
export const imageFilterJobSchema = z.strictObject({
  filter: filterSchema,
  tile: z.number().int().min(minTile).max(maxTile),
})
/** An image-filter job's description (`JobSpec.description`). */
export type ImageFilterJob = z.infer<typeof imageFilterJobSchema>

const withinPixelLimit = (image: { width: number; height: number }) =>
  image.width * image.height <= maxImagePixels
const pixelLimit = { message: `the image is larger than ${maxImagePixels} pixels`, path: ['height'] }

/** A round's single input: the image to filter, by URL, with the size it must decode to. */
export const roundImageSchema = z
  .strictObject({ imageUrl, width: side, height: side })
  .refine(withinPixelLimit, pixelLimit)
/** A round's image, as `addInput` takes it. */
export type RoundImage = z.infer<typeof roundImageSchema>

/**
 * A task: the output rectangle `x, y, w, h` of one round's image. The worker reads the rectangle
 * grown by the filter radius (its halo), clamped to the image. `tile` is the job's tile side,
 * carried so that `taskSpan` can place the task without the job (see `tiling.ts`). A task lies in
 * one tile and is either whole rows of that tile or a piece of one row: the shapes `cut` makes.
 */
export const imageTaskSchema = z
  .strictObject({
    jobId: z.string().min(1).max(128),
    frameIndex,
    imageUrl,
    width: side,
    height: side,
    tile: z.number().int().min(minTile).max(maxTile),
    x: position,
    y: position,
    w: side,
    h: side,
  })
  .refine(withinPixelLimit, pixelLimit)
  .refine((t) => t.x + t.w <= t.width, { message: 'the rectangle ends past the image', path: ['w'] })
  .refine((t) => t.y + t.h <= t.height, { message: 'the rectangle ends past the image', path: ['h'] })
  .refine((t) => Math.floor(t.x / t.tile) === Math.floor((t.x + t.w - 1) / t.tile), {
    message: 'the rectangle spans two tiles',
    path: ['w'],
  })
  .refine((t) => Math.floor(t.y / t.tile) === Math.floor((t.y + t.h - 1) / t.tile), {
    message: 'the rectangle spans two tiles',
    path: ['h'],
  })
  .refine((t) => t.h === 1 || (t.x % t.tile === 0 && t.w === Math.min(t.tile, t.width - t.x)), {
    message: 'a task of several rows must span its tile’s whole width',
    path: ['w'],
  })
/** A task of the image-filter kind (a lease's `block`). */
export type ImageTask = z.infer<typeof imageTaskSchema>

/** A task's result: its rectangle's filtered RGBA pixels, row-major from the top-left. */
export interface ImageTaskResult {
  readonly jobId: string
  readonly frameIndex: number
  readonly x: number
  readonly y: number
  readonly w: number
  readonly h: number
  /** `w·h·4` bytes. */
  readonly rgba: Uint8Array
}

/** A round's outcome: the whole filtered image. */
export interface FilteredImage {
  readonly frameIndex: number
  readonly width: number
  readonly height: number
  readonly rgba: Uint8Array
}
