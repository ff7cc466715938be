/**
 * Preloaded (`node --import`) into a CLI under test: SIGUSR2 makes the process throw an uncaught
 * error from a timer, as a bug in an event listener would.
 */
process.on('SIGUSR2', () => {
  setImmediate(() => {
    throw new Error('injected uncaught error')
  })
})
