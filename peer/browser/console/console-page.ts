import type {
  ConsoleAction,
  ConsoleAlert,
  ConsoleProbe,
  ConsoleRecording,
  ConsoleSnapshot,
} from '../../console/console-protocol.ts'
import { qrModules } from '../../console/qr.ts'
import { DevicesTable, el } from './devices-table.ts'
import { JobCards } from './job-cards.ts'
import './console.css'

/*
 * The operator's console page, at the console link `/console/<event>/<token>`: one stream of
 * snapshots (Server-Sent Events at `<link>/stream`) drawn as alerts, jobs with their diagrams, and
 * the devices table; actions are posted to `<link>/api/actions`. The link's token is the operator's
 * credential, so the page never sends it anywhere else and nothing of it is cached.
 */

declare global {
  interface Window {
    crowdmeshConsole: ConsoleProbe
  }
}

const base = location.pathname.replace(/\/+$/, '')
const probe: ConsoleProbe = {
  drawMs: [],
  snapshots: 0,
  firstSeen: {},
  goneAt: {},
  renderMs: [],
  lastError: undefined,
  scroll: (ms, still = false) =>
    new Promise((resolve) => {
      const scroller = document.querySelector<HTMLElement>('.devices-scroll')!
      const intervals: number[] = []
      let last = performance.now()
      const end = last + ms
      const step = (now: number) => {
        intervals.push(now - last)
        last = now
        if (!still)
          scroller.scrollTop =
            scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight ? 0 : scroller.scrollTop + 45
        if (now < end) requestAnimationFrame(step)
        else resolve(intervals.slice(1))
      }
      requestAnimationFrame(step)
    }),
}
window.crowdmeshConsole = probe

const main = el('main', 'console')
const header = el('header')
const title = el('h1', '', 'crowdmesh console')
const crowd = el('p', 'crowd', 'connecting…')
const connection = el('span', 'connection', 'connecting')
header.append(title, connection, crowd)
const alerts = el('ul', 'alerts')
alerts.setAttribute('aria-live', 'polite')
const message = el('p', 'message')
message.setAttribute('role', 'status')
const jobs = new JobCards((action) => void act(action))
const devices = new DevicesTable((participantId) => askRemoval(participantId))
probe.drawMs = devices.drawMs
const links = linksPanel()
const recordings = recordingsPanel()
main.append(header, alerts, message, jobs.element, devices.element, links, recordings)
document.body.append(main, removalDialog())

let present = new Set<string>()
const stream = new EventSource(`${base}/stream`)
stream.onopen = () => setConnection('live')
stream.onerror = () => setConnection('reconnecting')
stream.onmessage = (event: MessageEvent<string>) => {
  const started = performance.now()
  const snapshot = JSON.parse(event.data) as ConsoleSnapshot
  apply(snapshot)
  const now = performance.timeOrigin + performance.now()
  const seen = new Set<string>()
  for (const row of snapshot.devices) {
    seen.add(row[0])
    probe.firstSeen[row[0]] ??= now
  }
  for (const id of present) if (!seen.has(id)) probe.goneAt[id] = now
  present = seen
  probe.snapshots++
  probe.renderMs.push(performance.now() - started)
  if (probe.renderMs.length > 1000) probe.renderMs.shift()
}

function apply(snapshot: ConsoleSnapshot): void {
  document.title = `crowdmesh console · ${snapshot.event}`
  title.textContent = `crowdmesh console · event ${snapshot.event}`
  const c = snapshot.crowd
  crowd.textContent = `${c.participants} participant${c.participants === 1 ? '' : 's'}: ${c.browsers} browser${c.browsers === 1 ? '' : 's'}, ${c.nodes} Node${c.dedicated > 0 ? ` (${c.dedicated} dedicated)` : ''}`
  drawAlerts(snapshot.alerts)
  jobs.update(snapshot.jobs, snapshot.series, snapshot.seriesWhole)
  devices.setRows(snapshot.devices)
}

function drawAlerts(list: ConsoleAlert[]): void {
  const key = list.map((a) => `${a.id}:${a.text}`).join('\n')
  if (alerts.dataset.key === key) return
  alerts.dataset.key = key
  alerts.replaceChildren(
    ...list.map((a) => {
      const item = el('li', `alert ${a.level}`, a.text)
      item.dataset.alert = a.id
      return item
    }),
  )
}

function setConnection(state: 'live' | 'reconnecting'): void {
  connection.textContent = state
  connection.dataset.state = state
}

/** Posts an action; says what happened, or why not. */
async function act(action: ConsoleAction): Promise<Record<string, unknown> | undefined> {
  try {
    const response = await fetch(`${base}/api/actions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(action),
      cache: 'no-store',
    })
    const body = (await response.json()) as Record<string, unknown>
    if (!response.ok) throw new Error(typeof body.error === 'string' ? body.error : response.statusText)
    say(`${describe(action)}: done`)
    return body
  } catch (error) {
    probe.lastError = (error as Error).message
    say(`${describe(action)}: ${(error as Error).message}`, true)
    return undefined
  }
}

function describe(action: ConsoleAction): string {
  switch (action.action) {
    case 'remove':
      return `removing …${action.participantId.slice(-10)}`
    case 'link':
      return `a new ${action.role} link`
    case 'weight':
      return `job ${action.jobId}: weight ${action.weight}`
    case 'floor':
      return `job ${action.jobId}: floor`
    default:
      return `${action.action} job ${action.jobId}`
  }
}

function say(text: string, error = false): void {
  message.textContent = text
  message.classList.toggle('error', error)
}

/** The dialog that asks why a participant is removed: the participant is shown the reason. */
function removalDialog(): HTMLDialogElement {
  const dialog = el('dialog', 'remove-dialog') as HTMLDialogElement
  const form = el('form') as HTMLFormElement
  form.method = 'dialog'
  const heading = el('p', 'remove-who')
  const reason = el('input', 'remove-reason') as HTMLInputElement
  reason.required = true
  reason.maxLength = 500
  reason.placeholder = 'reason (the participant sees it)'
  reason.setAttribute('aria-label', 'reason for removal')
  const confirm = el('button', 'danger remove-confirm', 'remove') as HTMLButtonElement
  confirm.value = 'remove'
  const cancel = el('button', 'remove-cancel', 'cancel') as HTMLButtonElement
  cancel.value = 'cancel'
  cancel.formNoValidate = true
  form.append(heading, reason, el('div', 'dialog-buttons'))
  form.lastElementChild!.append(cancel, confirm)
  dialog.append(form)
  dialog.addEventListener('close', () => {
    const id = dialog.dataset.participant
    if (dialog.returnValue === 'remove' && id !== undefined && reason.value.trim() !== '')
      void act({ action: 'remove', participantId: id, reason: reason.value.trim() })
    reason.value = ''
  })
  return dialog
}

function askRemoval(participantId: string): void {
  const dialog = document.querySelector<HTMLDialogElement>('dialog.remove-dialog')!
  dialog.dataset.participant = participantId
  dialog.querySelector('.remove-who')!.textContent = `Remove participant …${participantId.slice(-10)}?`
  dialog.returnValue = ''
  dialog.showModal()
}

/** Join links with an expiry, shown as a QR code for a screen at the venue. */
function linksPanel(): HTMLElement {
  const panel = el('section', 'links')
  panel.append(el('h2', '', 'Join links'))
  const form = el('div', 'link-form')
  const role = el('select', 'link-role') as HTMLSelectElement
  role.setAttribute('aria-label', 'role of the link')
  for (const r of ['participant', 'recorder']) role.append(new Option(r, r))
  const expiry = el('select', 'link-expiry') as HTMLSelectElement
  expiry.setAttribute('aria-label', 'the link expires after')
  for (const [label, seconds] of [
    ['1 hour', 3600],
    ['6 hours', 6 * 3600],
    ['1 day', 24 * 3600],
    ['7 days', 7 * 24 * 3600],
  ] as const)
    expiry.append(new Option(`expires in ${label}`, String(seconds)))
  expiry.value = String(6 * 3600)
  const create = el('button', 'link-create', 'create link') as HTMLButtonElement
  const shown = el('div', 'link-shown')
  create.addEventListener('click', () => void createLink())
  async function createLink(): Promise<void> {
    const answer = await act({
      action: 'link',
      role: role.value as 'participant' | 'recorder',
      ttlSeconds: Number(expiry.value),
    })
    if (typeof answer?.link !== 'string') return
    const link = answer.link
    const anchor = el('a', 'link-url', link) as HTMLAnchorElement
    anchor.href = link
    anchor.target = '_blank'
    anchor.rel = 'noreferrer'
    const hint = el(
      'p',
      'link-hint',
      `${role.value} link, ${expiry.selectedOptions[0]!.text}: scan it to join`,
    )
    shown.replaceChildren(qrCanvas(link), hint, anchor)
  }
  form.append(role, expiry, create)
  panel.append(form, shown)
  return panel
}

/** The link's QR code, black on white with a quiet zone of 4 modules, sharp at any size. */
function qrCanvas(text: string): HTMLCanvasElement {
  const modules = qrModules(text)
  const quiet = 4
  const scale = 6
  const size = (modules.length + 2 * quiet) * scale
  const canvas = el('canvas', 'qr') as HTMLCanvasElement
  canvas.width = canvas.height = size
  canvas.setAttribute('role', 'img')
  canvas.setAttribute('aria-label', `QR code of ${text}`)
  const context = canvas.getContext('2d')!
  context.fillStyle = '#fff'
  context.fillRect(0, 0, size, size)
  context.fillStyle = '#000'
  for (const [row, line] of modules.entries())
    for (const [col, dark] of line.entries())
      if (dark) context.fillRect((col + quiet) * scale, (row + quiet) * scale, scale, scale)
  return canvas
}

/** The event's recordings with their share links, listed on demand. */
function recordingsPanel(): HTMLElement {
  const panel = el('section', 'recordings')
  const head = el('div', 'recordings-head')
  const refresh = el('button', 'recordings-refresh', 'list recordings') as HTMLButtonElement
  head.append(el('h2', '', 'Recordings'), refresh)
  const list = el('ul', 'recordings-list')
  refresh.addEventListener('click', () => void listRecordings())
  async function listRecordings(): Promise<void> {
    try {
      const response = await fetch(`${base}/api/recordings`, { cache: 'no-store' })
      const body = (await response.json()) as { recordings?: ConsoleRecording[]; error?: string }
      if (!response.ok) throw new Error(body.error ?? response.statusText)
      const items = body.recordings ?? []
      list.replaceChildren(
        ...(items.length === 0
          ? [el('li', 'empty', 'no recordings yet')]
          : items.map((r) => {
              const item = el('li', `recording ${r.state}`)
              const anchor = el('a', '', r.shareUrl) as HTMLAnchorElement
              anchor.href = r.shareUrl
              anchor.target = '_blank'
              anchor.rel = 'noreferrer'
              const size = r.bytes === null ? '' : `, ${(r.bytes / 2 ** 20).toFixed(1)} MiB`
              item.append(
                el('span', '', `${new Date(r.createdAt).toLocaleString()} · ${r.state}${size} · `),
                anchor,
              )
              return item
            })),
      )
    } catch (error) {
      say(`listing recordings: ${(error as Error).message}`, true)
    }
  }
  panel.append(head, list)
  return panel
}
