/**
 * Prometheus metric families kept as plain cells, and their text exposition (format 0.0.4).
 * Recording is a field add on a cell bound once per label set: prom-client's Counter and
 * Histogram hashed a labels object on every call, bound children included (~0.4 µs a call,
 * ~15 calls a request), and loading prom-client cost ~55 ms of start and pulled in
 * @opentelemetry/api for its exemplars even with tracing off.
 */

type MetricType = 'counter' | 'gauge' | 'histogram'

/** A family renders its `# HELP`, `# TYPE` and sample lines. */
export interface MetricFamily {
  render: (lines: string[]) => void
}

/** The families of one `/metrics` page, in the order they were registered. */
export class MetricRegistry {
  static readonly CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
  readonly #families: MetricFamily[] = []

  register (family: MetricFamily): void {
    this.#families.push(family)
  }

  render (): string {
    const blocks = this.#families.map((family) => {
      const lines: string[] = []
      family.render(lines)
      return lines.join('\n')
    })
    return blocks.join('\n\n') + '\n'
  }
}

abstract class Family<Cell extends { labels: string }> implements MetricFamily {
  readonly #cells = new Map<string, Cell>()

  constructor (readonly name: string, readonly help: string, readonly type: MetricType, readonly labelNames: readonly string[], registry: MetricRegistry) {
    registry.register(this)
  }

  /** The cell of one label set (values in `labelNames` order), made on first use. */
  cell (...values: string[]): Cell {
    const key = values.length === 1 ? values[0]! : values.join('\u0000')
    let cell = this.#cells.get(key)
    if (cell === undefined) {
      cell = this.newCell(this.labelNames.map((name, i) => labelPair(name, values[i]!)).join(','))
      this.#cells.set(key, cell)
    }
    return cell
  }

  protected abstract newCell (labels: string): Cell
  protected abstract renderCell (cell: Cell, lines: string[]): void

  render (lines: string[]): void {
    lines.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`)
    for (const cell of this.#cells.values()) this.renderCell(cell, lines)
  }
}

/** A counter's (or an up-and-down gauge's) value for one label set; `labels` is rendered already. */
export class CounterCell {
  value = 0
  constructor (readonly labels: string) {}
}

export class CounterFamily extends Family<CounterCell> {
  constructor (name: string, help: string, labelNames: readonly string[], registry: MetricRegistry, type: 'counter' | 'gauge' = 'counter') {
    super(name, help, type, labelNames, registry)
  }

  protected newCell (labels: string): CounterCell {
    return new CounterCell(labels)
  }

  protected renderCell (cell: CounterCell, lines: string[]): void {
    lines.push(sample(this.name, cell.labels, cell.value))
  }
}

export class HistogramCell {
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor (readonly labels: string, private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe (value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

export class HistogramFamily extends Family<HistogramCell> {
  constructor (name: string, help: string, labelNames: readonly string[], readonly bounds: readonly number[], registry: MetricRegistry) {
    super(name, help, 'histogram', labelNames, registry)
  }

  protected newCell (labels: string): HistogramCell {
    return new HistogramCell(labels, this.bounds)
  }

  /** Cumulative `_bucket`s by `le` (then `+Inf`), `_sum` and `_count`, as Prometheus reads them. */
  protected renderCell (cell: HistogramCell, lines: string[]): void {
    const rest = cell.labels === '' ? '' : `,${cell.labels}`
    let cumulative = 0
    this.bounds.forEach((le, i) => {
      cumulative += cell.counts[i]!
      lines.push(sample(`${this.name}_bucket`, `le="${le}"${rest}`, cumulative))
    })
    lines.push(
      sample(`${this.name}_bucket`, `le="+Inf"${rest}`, cell.count),
      sample(`${this.name}_sum`, cell.labels, cell.sum),
      sample(`${this.name}_count`, cell.labels, cell.count)
    )
  }
}

/** A family (a gauge, or a counter kept elsewhere) whose samples are read when the page is rendered: sessions held, upstream health, process figures. */
export class ReadFamily implements MetricFamily {
  constructor (readonly name: string, readonly help: string, private readonly read: () => Array<[labels: Record<string, string>, value: number]>, registry: MetricRegistry, readonly type: 'gauge' | 'counter' = 'gauge') {
    registry.register(this)
  }

  render (lines: string[]): void {
    lines.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`)
    for (const [labels, value] of this.read()) {
      lines.push(sample(this.name, Object.entries(labels).map(([name, v]) => labelPair(name, v)).join(','), value))
    }
  }
}

function sample (name: string, labels: string, value: number): string {
  return `${name}${labels === '' ? '' : `{${labels}}`} ${formatValue(value)}`
}

function formatValue (value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

function labelPair (name: string, value: string): string {
  return `${name}="${value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`
}

function escapeHelp (help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}
