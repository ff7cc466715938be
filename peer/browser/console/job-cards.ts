import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import type { ConsoleAction, ConsoleJob, SeriesPoint } from '../../console/console-protocol.ts'
import { el } from './devices-table.ts'

/** What a job card asks the page to do. */
export type JobActionHandler = (action: ConsoleAction) => void

interface Card {
  element: HTMLElement
  figures: HTMLElement
  state: HTMLElement
  pause: HTMLButtonElement
  end: HTMLButtonElement
  weight: HTMLInputElement
  floor: HTMLElement
  chart: uPlot
  /** Columns of the diagram: time, rounds completed, latency p95, participants, units/s. */
  data: [number[], (number | null)[], (number | null)[], (number | null)[], (number | null)[]]
}

/** Points a diagram keeps (the console sends at most as many). */
const maxPoints = 900

/**
 * One card per job of the event: its figures, its actions (pause or resume, end, its weight among
 * jobs of its class, a live job's capacity floor) and its diagram over time, drawn with uPlot.
 */
export class JobCards {
  readonly element: HTMLElement
  private readonly list: HTMLElement
  private readonly cards = new Map<string, Card>()
  private readonly act: JobActionHandler

  constructor(act: JobActionHandler) {
    this.act = act
    this.element = el('section', 'jobs')
    this.element.append(el('h2', '', 'Jobs'))
    this.list = el('div', 'job-list')
    this.element.append(this.list)
    new ResizeObserver(() => {
      for (const card of this.cards.values()) card.chart.setSize(chartSize(card.element))
    }).observe(this.list)
  }

  /** A snapshot's jobs and diagram points (`whole`: the diagrams from scratch). */
  update(jobs: ConsoleJob[], series: Record<string, SeriesPoint[]>, whole: boolean): void {
    for (const job of jobs) {
      let card = this.cards.get(job.jobId)
      if (card === undefined) {
        card = this.newCard(job)
        this.cards.set(job.jobId, card)
      }
      this.fill(card, job)
      const points = series[job.jobId]
      if (whole) for (const column of card.data) column.length = 0
      if (points !== undefined && points.length > 0) {
        for (const p of points) {
          if (card.data[0].length > 0 && p[0] <= card.data[0].at(-1)!) continue
          for (let i = 0; i < 5; i++) (card.data[i] as (number | null)[]).push(p[i] as number | null)
        }
        for (const column of card.data)
          if (column.length > maxPoints) column.splice(0, column.length - maxPoints)
        card.chart.setData(card.data)
      }
    }
  }

  private newCard(job: ConsoleJob): Card {
    const element = el('article', 'job')
    element.dataset.job = job.jobId
    const head = el('div', 'job-head')
    const name = el('h3', '', job.jobId)
    const state = el('span', 'job-state')
    head.append(name, el('span', 'job-kind', `${job.kind} · ${job.class}`), state)
    const figures = el('div', 'job-figures')
    const actions = el('div', 'job-actions')
    const pause = el('button', 'pause', 'pause') as HTMLButtonElement
    pause.addEventListener('click', () =>
      this.act({ action: pause.dataset.next === 'resume' ? 'resume' : 'pause', jobId: job.jobId }),
    )
    const end = el('button', 'end danger', 'end') as HTMLButtonElement
    end.addEventListener('click', () => {
      if (end.dataset.armed === '1') this.act({ action: 'end', jobId: job.jobId })
      else {
        // A second click confirms: ending a job drops its open rounds for good.
        end.dataset.armed = '1'
        end.textContent = 'end for good?'
        setTimeout(() => {
          end.dataset.armed = ''
          end.textContent = 'end'
        }, 4000)
      }
    })
    const weightLabel = numberField('weight', 'weight', `weight of job ${job.jobId}`, {
      min: '0.01',
      max: '1000',
    })
    const weight = weightLabel.querySelector('input')!
    weight.value = String(job.weight)
    weight.addEventListener('change', () => {
      const value = Number(weight.value)
      if (value >= 0.01 && value <= 1000) this.act({ action: 'weight', jobId: job.jobId, weight: value })
    })
    const floor = el('span', 'floor')
    actions.append(pause, end, weightLabel)
    if (job.class === 'live') {
      // The capacity below which dedicated devices start (empty: the job's own, from its rounds).
      const floorLabel = numberField('floor-set', 'floor', `floor of job ${job.jobId}, units per second`, {
        min: '0',
        placeholder: 'auto',
      })
      const floorInput = floorLabel.querySelector('input')!
      floorInput.addEventListener('change', () => {
        const value = floorInput.value.trim() === '' ? null : Number(floorInput.value)
        if (value === null || value >= 0) this.act({ action: 'floor', jobId: job.jobId, unitsPerSec: value })
      })
      actions.append(floorLabel)
    }
    actions.append(floor)
    const plot = el('div', 'job-chart')
    element.append(head, figures, actions, plot)
    this.list.append(element)
    const data: Card['data'] = [[], [], [], [], []]
    const chart = new uPlot(
      {
        ...chartSize(element),
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
        scales: { x: { time: false } },
        series: [
          { label: 's' },
          { label: 'rounds done', stroke: '#7aa2f7', scale: 'rounds', width: 1.5 },
          { label: 'latency p95 ms', stroke: '#f7768e', scale: 'ms', width: 1.5 },
          { label: 'participants', stroke: '#9ece6a', scale: 'people', width: 1.5 },
          { label: 'units/s', stroke: '#e0af68', scale: 'units', width: 1.5 },
        ],
        axes: [
          { stroke: '#b8bfcc', grid: { stroke: '#2a2f3a' } },
          { scale: 'units', stroke: '#e0af68', grid: { stroke: '#2a2f3a' }, size: 70 },
          { scale: 'ms', side: 1, stroke: '#f7768e', grid: { show: false }, size: 64 },
        ],
      },
      data,
      plot,
    )
    return { element, figures, state, pause, end, weight, floor, chart, data }
  }

  private fill(card: Card, job: ConsoleJob): void {
    card.element.dataset.state = job.state
    setText(card.state, job.state)
    const latency =
      job.latencyP50 === null ? '' : ` · latency p50 ${job.latencyP50} ms, p95 ${job.latencyP95} ms`
    setText(
      card.figures,
      `${job.roundsCompleted} rounds done${job.roundsDropped > 0 ? `, ${job.roundsDropped} dropped` : ''} · ${job.rate} rounds/s · ${job.unitsPerSec.toLocaleString('en')} units/s${latency} · ${job.openRounds} open, ${job.queuedUnits.toLocaleString('en')} units queued`,
    )
    const ended = job.state === 'ended'
    card.pause.disabled = ended
    card.end.disabled = ended
    card.weight.disabled = ended
    card.pause.dataset.next = job.state === 'paused' ? 'resume' : 'pause'
    setText(card.pause, job.state === 'paused' ? 'resume' : 'pause')
    if (document.activeElement !== card.weight && Number(card.weight.value) !== job.weight)
      card.weight.value = String(job.weight)
    setText(
      card.floor,
      job.floor === null
        ? ''
        : `floor ${job.floor.needed.toLocaleString('en')} units/s · crowd ${Math.round(job.floor.capacity).toLocaleString('en')}`,
    )
    card.floor.classList.toggle('below', job.floor !== null && job.floor.capacity < job.floor.needed)
  }
}

function chartSize(card: HTMLElement): { width: number; height: number } {
  return { width: Math.max(260, card.clientWidth - 24), height: 180 }
}

/** A labelled number input: `<label class="…">text <input type=number></label>`. */
function numberField(
  className: string,
  text: string,
  ariaLabel: string,
  attributes: { min: string; max?: string; placeholder?: string },
): HTMLElement {
  const label = el('label', className, `${text} `)
  const input = el('input') as HTMLInputElement
  input.type = 'number'
  input.step = 'any'
  Object.assign(input, attributes)
  input.setAttribute('aria-label', ariaLabel)
  label.append(input)
  return label
}

function setText(element: HTMLElement, text: string): void {
  if (element.textContent !== text) element.textContent = text
}
