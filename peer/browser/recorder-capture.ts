import type { QualityLevel } from '../recorder/quality.ts'

/*
 * What the recorder records: the screen with the camera in a round bubble over its corner (the
 * seed's superposition), drawn on one canvas, with the microphone's sound. The canvas is drawn at
 * the quality level's size and frame rate, and its stream is what MediaRecorder encodes, so quality
 * of service changes the recording live. Drawing is driven by a timer and `requestFrame`, not by
 * animation frames, which stop when the tab is hidden.
 */

/** Where the "screen" comes from: the real screen, a generated test picture, or none (camera only). */
export type ScreenSource = 'display' | 'test' | 'none'

/** A running capture. */
export interface Capture {
  /** The composited video and the microphone, for MediaRecorder. */
  readonly stream: MediaStream
  readonly canvas: HTMLCanvasElement
  /** What could not be captured, for the person (no camera, no microphone). */
  readonly notes: string[]
  /** Resolves when the person ends screen sharing from the browser's own control. */
  readonly screenEnded: Promise<void>
  setLevel(level: QualityLevel): void
  stop(): void
}

/** Starts capturing; throws with a sentence for the person if there is nothing to record. */
export async function startCapture(options: {
  screen: ScreenSource
  camera: boolean
  microphone: boolean
  level: QualityLevel
}): Promise<Capture> {
  const notes: string[] = []
  const tracks: MediaStreamTrack[] = []
  const screenEnded = Promise.withResolvers<void>()
  let screen: CanvasImageSource | undefined
  let testPattern: ((t: number) => void) | undefined
  if (options.screen === 'display') {
    if (navigator.mediaDevices?.getDisplayMedia === undefined)
      notes.push('This browser cannot share its screen (phones cannot): recording the camera only.')
    else {
      const display = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30 }, audio: false })
      tracks.push(...display.getTracks())
      display.getVideoTracks()[0]?.addEventListener('ended', () => screenEnded.resolve(), { once: true })
      screen = await playing(display)
    }
  } else if (options.screen === 'test') {
    const pattern = document.createElement('canvas')
    pattern.width = 1280
    pattern.height = 720
    testPattern = drawTestPattern(pattern)
    screen = pattern
  }
  let camera: HTMLVideoElement | undefined
  let microphone: MediaStreamTrack | undefined
  if (options.camera || options.microphone) {
    try {
      const media = await navigator.mediaDevices.getUserMedia({
        video: options.camera && { width: { ideal: 640 }, height: { ideal: 480 } },
        audio: options.microphone && { echoCancellation: true, noiseSuppression: true },
      })
      tracks.push(...media.getTracks())
      microphone = media.getAudioTracks()[0]
      if (media.getVideoTracks().length > 0) camera = await playing(new MediaStream(media.getVideoTracks()))
    } catch (error) {
      notes.push(`No camera or microphone (${(error as Error).message}): recording without them.`)
    }
  }
  if (screen === undefined && camera === undefined)
    throw new Error('There is nothing to record: no screen and no camera could be opened.')

  const canvas = document.createElement('canvas')
  const context = canvas.getContext('2d', { alpha: false })!
  const stream = canvas.captureStream(0)
  const video = stream.getVideoTracks()[0] as CanvasCaptureMediaStreamTrack
  if (microphone !== undefined) stream.addTrack(microphone)
  let level = options.level
  const draw = () => {
    const { width, height } = canvas
    context.fillStyle = '#000'
    context.fillRect(0, 0, width, height)
    testPattern?.(performance.now())
    if (screen !== undefined) {
      fit(context, screen, 0, 0, width, height)
      if (camera !== undefined) bubble(context, camera, height)
    } else if (camera !== undefined) fit(context, camera, 0, 0, width, height)
    video.requestFrame()
  }
  let timer: ReturnType<typeof setInterval> | undefined
  const setLevel = (next: QualityLevel) => {
    level = next
    canvas.width = level.width
    canvas.height = level.height
    clearInterval(timer)
    timer = setInterval(draw, 1000 / level.fps)
    draw()
  }
  setLevel(level)
  return {
    stream,
    canvas,
    notes,
    screenEnded: screenEnded.promise,
    setLevel,
    stop() {
      clearInterval(timer)
      for (const track of [...tracks, video]) track.stop()
    },
  }
}

/** A video element playing a stream, once it has a picture. */
async function playing(stream: MediaStream): Promise<HTMLVideoElement> {
  const element = document.createElement('video')
  element.muted = true
  element.playsInline = true
  element.srcObject = stream
  await element.play()
  if (element.videoWidth === 0)
    await new Promise((resolve) => element.addEventListener('loadedmetadata', resolve, { once: true }))
  return element
}

const sizeOf = (source: CanvasImageSource) =>
  source instanceof HTMLVideoElement
    ? { w: source.videoWidth, h: source.videoHeight }
    : { w: (source as HTMLCanvasElement).width, h: (source as HTMLCanvasElement).height }

/** Draws a source into a box, letterboxed (the whole picture, aspect kept). */
function fit(
  context: CanvasRenderingContext2D,
  source: CanvasImageSource,
  x: number,
  y: number,
  width: number,
  height: number,
): void {
  const { w, h } = sizeOf(source)
  if (w === 0 || h === 0) return
  const scale = Math.min(width / w, height / h)
  context.drawImage(source, x + (width - w * scale) / 2, y + (height - h * scale) / 2, w * scale, h * scale)
}

/** The camera in a circle over the bottom-left corner, a fifth of the picture's height across. */
function bubble(context: CanvasRenderingContext2D, camera: HTMLVideoElement, height: number) {
  const { w, h } = sizeOf(camera)
  if (w === 0 || h === 0) return
  const r = Math.round(height * 0.17)
  const cx = r + Math.round(height * 0.04)
  const cy = height - cx
  const side = Math.min(w, h)
  context.save()
  context.beginPath()
  context.arc(cx, cy, r, 0, 2 * Math.PI)
  context.closePath()
  context.clip()
  // The centre square of the camera picture, filling the circle.
  context.drawImage(camera, (w - side) / 2, (h - side) / 2, side, side, cx - r, cy - r, 2 * r, 2 * r)
  context.restore()
  context.lineWidth = Math.max(2, r / 20)
  context.strokeStyle = '#fff'
  context.beginPath()
  context.arc(cx, cy, r, 0, 2 * Math.PI)
  context.stroke()
}

/** A moving picture that stands in for a screen (tests, and trying the recorder without sharing). */
function drawTestPattern(canvas: HTMLCanvasElement): (t: number) => void {
  const context = canvas.getContext('2d')!
  const colours = ['#c0c0c0', '#c0c000', '#00c0c0', '#00c000', '#c000c0', '#c00000', '#0000c0']
  return (t) => {
    const { width, height } = canvas
    colours.forEach((colour, i) => {
      context.fillStyle = colour
      context.fillRect((i * width) / colours.length, 0, width / colours.length + 1, height * 0.7)
    })
    context.fillStyle = '#111'
    context.fillRect(0, height * 0.7, width, height * 0.3)
    const x = ((t / 4000) % 1) * width
    context.fillStyle = '#fff'
    context.fillRect(x, height * 0.72, width * 0.05, height * 0.05)
    context.font = `${Math.round(height * 0.09)}px monospace`
    context.fillText(`${(t / 1000).toFixed(2)} s`, width * 0.55, height * 0.93)
  }
}
