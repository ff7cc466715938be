/**
 * Releases WebRTC's native threads (node-datachannel) once every mesh node of the process has
 * stopped; without it a Node process that used WebRTC does not exit on its own. Node only: browsers
 * need nothing, and the web app's bundle must not see node-datachannel.
 */
export async function releaseWebRTC(): Promise<void> {
  const { cleanup } = await import('node-datachannel')
  cleanup()
}
