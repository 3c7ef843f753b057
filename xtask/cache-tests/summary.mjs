// Classifies a run of the HTTP caching test suite (http-cache-tests, cache-tests.fyi) the way
// its own result pages do, for a shared cache (browser-only tests skipped), and exits 1 when a
// required behaviour failed (⛔), a test could not even be set up (🔹, ⁉️), or a test has no
// result at all (the run stopped early, or recorded nothing): an empty result never passes.
// Tests whose dependencies failed (⚪️) are the only ones allowed to have no result.
//
// usage: node summary.mjs SUITE_DIR RESULTS.json
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, resultsFile] = process.argv.slice(2)
const load = (p) => import(pathToFileURL(path.join(suiteDir, p)).href)
const display = await load('lib/display.mjs')
const tests = (await load('tests/index.mjs')).default
tests.push((await load('tests/surrogate-control.mjs')).default)
const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))

const names = { '✅': 'pass', '⛔️': 'FAIL (required)', '⚠️': 'not optimal', Y: 'check: yes', N: 'check: no', '⚪️': 'dependency not met', '🔹': 'SETUP FAILED', '⁉️': 'HARNESS FAILED', '↻': 'retried', '-': 'untested' }
const counts = {}
const bad = []
let total = 0
let ran = 0
for (const suite of tests) {
  for (const t of suite.tests) {
    if (t.browser_only) continue
    total += 1
    const symbol = display.determineTestResult(tests, t.id, results)[2]
    counts[symbol] = (counts[symbol] || 0) + 1
    if (t.id in results) ran += 1
    if (['⛔️', '🔹', '⁉️'].includes(symbol)) bad.push(`${symbol} ${t.id}: ${JSON.stringify(results[t.id])}`)
    else if (!(t.id in results) && symbol !== '⚪️') bad.push(`no result: ${t.id} (${symbol})`)
  }
}
for (const [symbol, n] of Object.entries(counts)) console.log(`${String(n).padStart(4)}  ${symbol} ${names[symbol] || ''}`)
console.log(`${String(ran).padStart(4)}  of the suite's ${total} shared-cache tests have a result`)
if (total === 0) bad.push('the suite holds no tests: the suite or its index failed to load')
for (const line of bad) console.log(line)
process.exit(bad.length ? 1 : 0)
