import * as twgl from 'twgl.js'
import type { OutcomeSnapshot } from '../jobs/vertex/outcome-codec.ts'

/*
 * The live 3D viewer: each frame outcome as a coloured point cloud. twgl.js rather than three.js:
 * the viewer draws one point cloud with one tiny shader, the compute backend already speaks raw
 * WebGL, and twgl adds ~12 KB where three.js adds ~180 KB gzipped to a page people open on a phone
 * over venue Wi-Fi. Drawing is on demand (a new outcome, a drag, a resize), never a busy render loop,
 * so the viewer costs nothing while the device computes.
 */

const vertexShader = `
attribute vec3 position;
attribute vec3 colour;
uniform mat4 viewProjection;
uniform float pointSize;
varying vec3 vColour;
void main() {
  gl_Position = viewProjection * vec4(position, 1.0);
  // Nearer points larger: the cloud reads as a volume, not a flat scatter.
  gl_PointSize = max(1.0, pointSize / gl_Position.w);
  vColour = colour;
}`

const fragmentShader = `
precision mediump float;
varying vec3 vColour;
void main() {
  gl_FragColor = vec4(vColour, 1.0);
}`

/** Where the camera is: angles around the cloud's centre and the distance to it. */
interface Orbit {
  yaw: number
  pitch: number
  distance: number
}

/** Draws frame outcomes as point clouds on a canvas; orbit by dragging, zoom by wheel or pinch. */
export class PointCloudViewer {
  /** Points drawn now. */
  points = 0
  private readonly gl: WebGLRenderingContext
  private readonly program: twgl.ProgramInfo
  private buffers: twgl.BufferInfo | undefined
  private readonly orbit: Orbit = { yaw: 0.6, pitch: -0.35, distance: 2.2 }
  private frameRequested = false
  private readonly controller = new AbortController()
  private readonly resizes = new ResizeObserver(() => this.requestDraw())
  /** Point size per unit of canvas height, from the grid's resolution. */
  private pointScale = 0.02
  private readonly canvas: HTMLCanvasElement

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas
    const gl = canvas.getContext('webgl', { antialias: true, preserveDrawingBuffer: true })
    if (gl === null) throw new Error('this browser cannot draw WebGL: the 3D view is off')
    this.gl = gl
    this.program = twgl.createProgramInfo(gl, [vertexShader, fragmentShader])
    this.listen()
    this.requestDraw()
  }

  /** Shows an outcome: each coloured vertex at its place in the grid, in its colour. */
  show(snapshot: OutcomeSnapshot): void {
    const [nx, ny, nz] = snapshot.resolution
    const scale = 1 / Math.max(nx, ny, nz)
    const count = snapshot.ids.length
    const position = new Float32Array(count * 3)
    for (let i = 0; i < count; i++) {
      const id = snapshot.ids[i]!
      const ix = id % nx
      const rest = (id - ix) / nx
      const iy = rest % ny
      const iz = (rest - iy) / ny
      // Centred on the origin; the data set's y points down (image convention), the viewer's up.
      position[i * 3] = (ix + 0.5 - nx / 2) * scale
      position[i * 3 + 1] = -(iy + 0.5 - ny / 2) * scale
      position[i * 3 + 2] = (iz + 0.5 - nz / 2) * scale
    }
    const arrays = {
      position: { numComponents: 3, data: position },
      colour: { numComponents: 3, data: snapshot.rgb.subarray(0, count * 3), normalize: true },
    }
    this.deleteBuffers()
    this.buffers = twgl.createBufferInfoFromArrays(this.gl, arrays)
    this.points = count
    this.pointScale = 2.4 / Math.max(nx, ny, nz)
    this.requestDraw()
  }

  /** Removes listeners and GL buffers. */
  dispose(): void {
    this.controller.abort()
    this.deleteBuffers()
  }

  private deleteBuffers(): void {
    if (this.buffers === undefined) return
    for (const attribute of Object.values(this.buffers.attribs ?? {})) this.gl.deleteBuffer(attribute.buffer)
    this.buffers = undefined
  }

  private requestDraw(): void {
    if (this.frameRequested) return
    this.frameRequested = true
    requestAnimationFrame(() => {
      this.frameRequested = false
      this.draw()
    })
  }

  private draw(): void {
    const { gl, canvas } = this
    twgl.resizeCanvasToDisplaySize(canvas, Math.min(devicePixelRatio, 2))
    gl.viewport(0, 0, canvas.width, canvas.height)
    gl.clearColor(0.06, 0.07, 0.09, 1)
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT)
    if (this.buffers === undefined) return
    gl.enable(gl.DEPTH_TEST)
    const { yaw, pitch, distance } = this.orbit
    const eye = [
      distance * Math.cos(pitch) * Math.sin(yaw),
      -distance * Math.sin(pitch),
      distance * Math.cos(pitch) * Math.cos(yaw),
    ]
    const aspect = canvas.width / Math.max(canvas.height, 1)
    const projection = twgl.m4.perspective(Math.PI / 4, aspect, 0.05, 20)
    const view = twgl.m4.inverse(twgl.m4.lookAt(eye, [0, 0, 0], [0, 1, 0]))
    gl.useProgram(this.program.program)
    twgl.setBuffersAndAttributes(gl, this.program, this.buffers)
    twgl.setUniforms(this.program, {
      viewProjection: twgl.m4.multiply(projection, view),
      // Points sized so neighbouring vertices just touch at the default distance.
      pointSize: this.pointScale * canvas.height * 1.2,
    })
    twgl.drawBufferInfo(gl, this.buffers, gl.POINTS)
  }

  private listen(): void {
    const { canvas } = this
    const signal = this.controller.signal
    const pointers = new Map<number, { x: number; y: number }>()
    let pinch = 0
    canvas.style.touchAction = 'none'
    canvas.addEventListener(
      'pointerdown',
      (e) => {
        canvas.setPointerCapture(e.pointerId)
        pointers.set(e.pointerId, { x: e.clientX, y: e.clientY })
      },
      { signal },
    )
    canvas.addEventListener(
      'pointermove',
      (e) => {
        const last = pointers.get(e.pointerId)
        if (last === undefined) return
        pointers.set(e.pointerId, { x: e.clientX, y: e.clientY })
        if (pointers.size === 2) {
          const [a, b] = [...pointers.values()]
          const spread = Math.hypot(a!.x - b!.x, a!.y - b!.y)
          if (pinch > 0) this.zoom(pinch / spread)
          pinch = spread
          return
        }
        this.orbit.yaw -= (e.clientX - last.x) * 0.01
        this.orbit.pitch = Math.max(-1.5, Math.min(1.5, this.orbit.pitch + (e.clientY - last.y) * 0.01))
        this.requestDraw()
      },
      { signal },
    )
    const release = (e: PointerEvent) => {
      pointers.delete(e.pointerId)
      pinch = 0
    }
    canvas.addEventListener('pointerup', release, { signal })
    canvas.addEventListener('pointercancel', release, { signal })
    canvas.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault()
        this.zoom(Math.exp(e.deltaY * 0.001))
      },
      { signal, passive: false },
    )
    this.resizes.observe(canvas)
    signal.addEventListener('abort', () => {
      pointers.clear()
      this.resizes.disconnect()
    })
  }

  private zoom(factor: number): void {
    this.orbit.distance = Math.max(0.4, Math.min(8, this.orbit.distance * factor))
    this.requestDraw()
  }
}
