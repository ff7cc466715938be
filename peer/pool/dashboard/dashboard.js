/* global document, location, fetch, setInterval, URLSearchParams */
// The runs dashboard (issue 15): polls the serving coordinator's /api/runs once a second and draws
// every run; a run's priority is changed with POST /api/runs/NAME/priority. The key in the page's
// URL authorises both (the dashboard is the operator's). Strings are set as text, never as HTML.
'use strict'
;(() => {
  const key = new URLSearchParams(location.search).get('key') ?? ''
  const runsEl = document.getElementById('runs')
  const summaryEl = document.getElementById('summary')
  /** Priority inputs being edited are not redrawn under the operator's fingers. */
  const editing = new Set()

  const el = (tag, props = {}, children = []) => {
    const node = document.createElement(tag)
    for (const [name, value] of Object.entries(props)) {
      if (name === 'text') node.textContent = String(value)
      else if (name === 'class') node.className = value
      else node.setAttribute(name, String(value))
    }
    for (const child of children) node.append(child)
    return node
  }
  // Widths through the CSSOM: the page's policy refuses inline style attributes.
  const segment = (name, width) => {
    const node = el('div', { class: name })
    node.style.width = width
    return node
  }
  const figure = (label, value) => el('div', {}, [el('span', { text: label }), el('b', { text: value })])
  const total = (c) => c.waiting + c.queued + c.leased + c.done + c.failed
  const duration = (s) => {
    if (!Number.isFinite(s)) return '—'
    if (s < 90) return `${Math.round(s)} s`
    if (s < 5400) return `${Math.round(s / 60)} min`
    return `${(s / 3600).toFixed(1)} h`
  }

  const setPriority = async (run, value) => {
    const response = await fetch(
      `api/runs/${encodeURIComponent(run)}/priority?key=${encodeURIComponent(key)}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ priority: Number(value) }),
      },
    )
    if (!response.ok) throw new Error((await response.json()).error ?? response.statusText)
  }

  const drawRun = (run) => {
    const slices = run.matches
    const all = total(slices) + total(run.fingerprints)
    const done = slices.done + slices.failed + run.fingerprints.done + run.fingerprints.failed
    const leased = slices.leased + run.fingerprints.leased
    const pct = (n) => `${all === 0 ? 0 : (100 * n) / all}%`
    const input = el('input', {
      type: 'number',
      min: -1000,
      max: 1000,
      step: 1,
      name: 'priority',
      'data-run': run.run,
    })
    input.value = String(run.priority)
    // Once the operator types, the run is not redrawn until the new priority is sent.
    input.addEventListener('input', () => editing.add(run.run))
    const message = el('span', { class: 'error' })
    const form = el('form', { class: 'priority' }, [
      el('label', { text: 'priority' }),
      input,
      el('button', { type: 'submit', text: 'set' }),
      message,
    ])
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      setPriority(run.run, input.value).then(
        () => {
          message.textContent = ''
          editing.delete(run.run)
        },
        (error) => (message.textContent = error.message),
      )
    })
    const rows = run.workers.map((w) =>
      el('tr', {}, [
        el('td', { text: w.participant.slice(-10) }),
        el('td', { text: w.slices }),
        el('td', { text: `${Math.round((100 * w.held) / Math.max(1, w.slices))} %` }),
      ]),
    )
    return el('section', { class: 'run', 'data-run': run.run }, [
      el('h2', {}, [
        el('span', { text: run.run }),
        el('span', {
          class: `state${run.finished ? ' done' : ''}`,
          text: run.finished ? 'done' : run.matching ? 'matching' : 'fingerprinting',
        }),
        form,
      ]),
      el('div', { class: 'bar' }, [segment('done', pct(done)), segment('leased', pct(leased))]),
      el('div', { class: 'figures' }, [
        figure(
          'slices done / leased / queued',
          `${slices.done} / ${slices.leased} / ${slices.queued + slices.waiting}`,
        ),
        figure('fingerprints', `${run.fingerprints.done} / ${total(run.fingerprints)}`),
        figure('matches found', run.found),
        figure('throughput', `${run.slicesPerMinute.toFixed(1)} slices/min`),
        figure('ETA', run.finished ? 'done' : duration(run.etaSeconds)),
        figure('failed', `${slices.failed + run.fingerprints.failed}`),
      ]),
      el('table', {}, [
        el('tr', {}, [
          el('th', { text: 'participant' }),
          el('th', { text: 'slices' }),
          el('th', { text: 'cache hits' }),
        ]),
        ...rows,
      ]),
    ])
  }

  const refresh = async () => {
    try {
      const response = await fetch(`api/runs?key=${encodeURIComponent(key)}`)
      if (!response.ok) throw new Error((await response.json()).error ?? response.statusText)
      const state = await response.json()
      summaryEl.textContent = `${state.runs.length} runs · ${state.participants} participants computing · ${state.written} slices written, ${state.unwritten} waiting for a writer`
      const keep = new Map([...runsEl.querySelectorAll('section.run')].map((s) => [s.dataset.run, s]))
      runsEl.replaceChildren(
        ...state.runs.map((run) =>
          editing.has(run.run) && keep.has(run.run) ? keep.get(run.run) : drawRun(run),
        ),
      )
    } catch (error) {
      summaryEl.textContent = `cannot reach the coordinator: ${error.message}`
    }
  }
  refresh()
  setInterval(refresh, 1000)
})()
