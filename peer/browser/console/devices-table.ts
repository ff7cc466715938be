import { type DeviceColumn, deviceColumns, type DeviceRow } from '../../console/console-protocol.ts'

/** Height of one row, px: fixed, so the rows on screen follow from the scroll offset alone. */
export const rowHeight = 30
/** Rows drawn above and below the visible ones, so a fast scroll shows no blank band. */
const overscan = 8

const headings: Record<DeviceColumn, string> = {
  participant: 'participant',
  address: 'address',
  agent: 'agent',
  backend: 'backend',
  cores: 'cores',
  duty: 'duty',
  rttMs: 'rtt ms',
  msPerThread: 'ms/thread',
  processed: 'processed',
  assigned: 'assigned',
  fps: 'fps',
  trust: 'trust',
  kinds: 'kinds',
  dedicated: 'dedicated',
  joinedS: 'joined',
}
/** What a heading means, on hover. */
const explained: Partial<Record<DeviceColumn, string>> = {
  duty: 'share of its processor the participant lends',
  rttMs: 'round trip to the coordinator, as the participant measured it',
  msPerThread: 'mean execution time of one thread on one core (the seed’s figure)',
  processed: 'reference units it computed that counted',
  assigned: 'reference units leased to it',
  fps: 'rounds of the live job its observed speed alone would finish per second',
  trust: 'how far its results are trusted (README, "Trust")',
}

/** Text matched by the filter box. */
const searchable: readonly number[] = ['participant', 'address', 'agent', 'backend', 'trust', 'kinds'].map(
  (c) => deviceColumns.indexOf(c as DeviceColumn),
)
const numeric = new Set<DeviceColumn>([
  'cores',
  'duty',
  'rttMs',
  'msPerThread',
  'processed',
  'assigned',
  'fps',
  'joinedS',
])

/**
 * The devices table: sortable by any column, filtered by a text box, and virtualised: only the rows
 * on screen (and a few around) exist in the DOM, drawn in a pool of row elements reused as it
 * scrolls, and a cell is written only when its text changes. A thousand rows cost what thirty do.
 */
export class DevicesTable {
  readonly element: HTMLElement
  private readonly scroller: HTMLElement
  private readonly spacer: HTMLElement
  private readonly window: HTMLElement
  private readonly count: HTMLElement
  private readonly pool: HTMLElement[] = []
  private rows: DeviceRow[] = []
  private shown: DeviceRow[] = []
  private sortColumn = deviceColumns.indexOf('processed')
  private descending = true
  private filterText = ''
  /** How long each draw took, ms (the last 1,000): the console benchmark reads it. */
  readonly drawMs: number[] = []
  private readonly onRemove: (participantId: string) => void

  constructor(onRemove: (participantId: string) => void) {
    this.onRemove = onRemove
    this.element = el('section', 'devices')
    const bar = el('div', 'devices-bar')
    const title = el('h2', '', 'Devices')
    this.count = el('span', 'devices-count')
    const filter = el('input', 'devices-filter') as HTMLInputElement
    filter.type = 'search'
    filter.placeholder = 'filter: id, address, agent, WebGL, trusted…'
    filter.setAttribute('aria-label', 'filter devices')
    filter.addEventListener('input', () => {
      this.filterText = filter.value.trim().toLowerCase()
      this.refresh()
    })
    bar.append(title, this.count, filter)
    const head = el('div', 'devices-row devices-head')
    head.setAttribute('role', 'row')
    for (const [i, column] of deviceColumns.entries()) {
      const cell = el('button', `cell c-${column}`, headings[column])
      cell.setAttribute('role', 'columnheader')
      if (explained[column] !== undefined) cell.title = explained[column]
      cell.addEventListener('click', () => {
        if (this.sortColumn === i) this.descending = !this.descending
        else {
          this.sortColumn = i
          this.descending = numeric.has(column)
        }
        this.refresh()
      })
      head.append(cell)
    }
    head.append(el('span', 'cell c-actions'))
    this.scroller = el('div', 'devices-scroll')
    this.scroller.setAttribute('role', 'table')
    this.spacer = el('div', 'devices-spacer')
    this.window = el('div', 'devices-window')
    this.spacer.append(this.window)
    this.scroller.append(this.spacer)
    this.scroller.addEventListener('scroll', () => this.draw(), { passive: true })
    // One frame scrolls sideways for the header and the rows together; the rows scroll down alone.
    const frame = el('div', 'devices-frame')
    frame.append(head, this.scroller)
    this.element.append(bar, frame)
    new ResizeObserver(() => this.draw()).observe(this.scroller)
  }

  /** New rows from a snapshot: sorted and filtered as chosen, and the visible window redrawn. */
  setRows(rows: DeviceRow[]): void {
    this.rows = rows
    this.refresh()
  }

  private refresh(): void {
    const column = this.sortColumn
    const sign = this.descending ? -1 : 1
    const filter = this.filterText
    this.shown = (
      filter === ''
        ? this.rows.slice()
        : this.rows.filter(
            (r) =>
              searchable.some((i) => String(r[i]).toLowerCase().includes(filter)) ||
              (filter === 'dedicated' && r[13]),
          )
    ).sort((a, b) => {
      const x = a[column]!
      const y = b[column]!
      const order =
        typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))
      return sign * order || a[0].localeCompare(b[0])
    })
    this.count.textContent =
      this.shown.length === this.rows.length
        ? `${this.rows.length} connected`
        : `${this.shown.length} of ${this.rows.length} shown`
    this.spacer.style.height = `${this.shown.length * rowHeight}px`
    // As tall as its rows, up to the page's limit: a size of its own keeps the table's layout apart.
    this.scroller.style.height = `${Math.max(2, this.shown.length) * rowHeight + 2}px`
    this.draw()
  }

  /**
   * Draws the rows in view. Row `i` always lands in pool element `i mod pool size`, placed at its own
   * offset: scrolling by a row rewrites the one element that scrolled in, not every element.
   */
  private draw(): void {
    const started = performance.now()
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / rowHeight) - overscan)
    const visible = Math.ceil((this.scroller.clientHeight || 600) / rowHeight) + 2 * overscan
    const last = Math.min(this.shown.length, first + visible)
    while (this.pool.length < visible) this.pool.push(this.newRow())
    const size = this.pool.length
    const used = new Set<number>()
    for (let i = first; i < last; i++) {
      const slot = i % size
      used.add(slot)
      const element = this.pool[slot]!
      if (element.parentElement === null) this.window.append(element)
      const top = `${i * rowHeight}px`
      if (element.style.top !== top) element.style.top = top
      fill(element, this.shown[i]!)
    }
    for (let slot = 0; slot < size; slot++)
      if (!used.has(slot) && this.pool[slot]!.parentElement !== null) this.pool[slot]!.remove()
    this.drawMs.push(performance.now() - started)
    if (this.drawMs.length > 1000) this.drawMs.shift()
  }

  private newRow(): HTMLElement {
    const element = el('div', 'devices-row')
    element.setAttribute('role', 'row')
    for (const column of deviceColumns) element.append(el('span', `cell c-${column}`))
    const remove = el('button', 'cell c-actions remove', 'remove')
    remove.title = 'remove this participant from the event'
    remove.addEventListener('click', () => {
      const id = element.dataset.participant
      if (id !== undefined) this.onRemove(id)
    })
    element.append(remove)
    return element
  }
}

function fill(element: HTMLElement, row: DeviceRow): void {
  if (element.dataset.participant !== row[0]) {
    element.dataset.participant = row[0]
    ;(element.children[0] as HTMLElement).title = row[0]
  }
  element.dataset.trust = row[11]
  element.classList.toggle('dedicated', row[13])
  for (let i = 0; i < deviceColumns.length; i++) {
    const text = cellText(deviceColumns[i]!, row[i]!)
    const cell = element.children[i] as HTMLElement
    if (cell.textContent !== text) cell.textContent = text
  }
}

function cellText(column: DeviceColumn, value: string | number | boolean): string {
  switch (column) {
    case 'participant':
      return `…${String(value).slice(-10)}`
    case 'duty':
      return `${Math.round(Number(value) * 100)} %`
    case 'msPerThread':
      return Number(value) === 0 ? '–' : Number(value).toPrecision(3)
    case 'dedicated':
      return value === true ? 'dedicated' : ''
    case 'joinedS':
      return duration(Number(value))
    case 'fps':
      return Number(value) === 0 ? '–' : Number(value).toFixed(1)
    case 'processed':
    case 'assigned':
      return compact.format(Number(value))
    default:
      return typeof value === 'number' ? value.toLocaleString('en') : String(value)
  }
}

const compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 2 })

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`
}

export function el(tag: string, className = '', text?: string): HTMLElement {
  const element = document.createElement(tag)
  if (className !== '') element.className = className
  if (text !== undefined) element.textContent = text
  return element
}
