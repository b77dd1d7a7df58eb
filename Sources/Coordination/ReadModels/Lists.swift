import Events
import Foundation

/// A filter a list accepts (`?status=below_minimum`). Declared once, with the list: the API checks and parses
/// query parameters with it, the OpenAPI document lists it, coordctl and the console use the same names.
public struct ListFilter: Sendable {
    public enum Kind: Sendable, Equatable {
        /// Free text (a search, a name).
        case text
        /// A client-chosen identifier (`[A-Za-z0-9][A-Za-z0-9._-]{0,63}`).
        case id
        /// `YYYY-MM-DD`.
        case date
        /// A whole number in a range.
        case integer(ClosedRange<Int>)
        /// One of these values.
        case oneOf([String])
        /// `true` or `false`.
        case flag
    }

    public let name: String
    public let kind: Kind
    public let help: String
    public let required: Bool

    public init(_ name: String, _ kind: Kind, _ help: String, required: Bool = false) {
        (self.name, self.kind, self.help, self.required) = (name, kind, help, required)
    }
}

extension ListFilter {
    /// The values of `query` for `filters`, each checked against its kind; the errors name every bad one.
    public static func check(_ filters: [ListFilter], _ query: [String: String]) throws -> [String: String] {
        var errors: [FieldError] = []
        var values: [String: String] = [:]
        for filter in filters {
            guard let raw = query[filter.name] else {
                if filter.required { errors.append(FieldError(filter.name, "is required")) }
                continue
            }
            if let problem = filter.problem(raw) { errors.append(FieldError(filter.name, problem)) }
            values[filter.name] = raw
        }
        if !errors.isEmpty { throw DomainError.validation(errors) }
        return values
    }

    /// Why `raw` is not a value of this filter, or nil.
    func problem(_ raw: String) -> String? {
        switch kind {
        case .text: return raw.isEmpty || raw.count > 200 ? "must be 1 to 200 characters" : nil
        case .id: return Validator.isID(raw) ? nil : "must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}"
        case .date: return Day(raw) == nil ? "must be a date YYYY-MM-DD" : nil
        case .integer(let range):
            return ListSpec.isDecimalText(raw) && Int(raw).map(range.contains) == true ? nil
                : "must be a whole number from \(range.lowerBound) to \(range.upperBound)"
        case .oneOf(let allowed): return allowed.contains(raw) ? nil : "must be one of " + allowed.joined(separator: ", ")
        case .flag: return raw == "true" || raw == "false" ? nil : "must be true or false"
        }
    }
}

/// Filter values of one request, each checked against its declaration.
public struct ListArguments: Sendable {
    private var values: [String: String] = [:]
    /// When the list's date-relative filters are evaluated (tests pin it).
    public var today: Day
    /// The caller may see personal data: the log's person events keep their names, a people search matches names.
    public var personalData = true
    /// What a scoped token reaches; nil: everything.
    public var scope: ReadScope?
    /// The warehouses and responses rows must belong to, as bind values (NULL when unscoped).
    var warehousesInScope: [String]? { scope?.warehouseList }
    var responsesInScope: [String]? { scope?.responseList }

    public init(_ values: [String: String] = [:], today: Day = Day(Date())) { (self.values, self.today) = (values, today) }

    public func text(_ name: String) -> String? { values[name] }
    public func day(_ name: String) -> Day? { values[name].flatMap(Day.init) }
    public func int(_ name: String) -> Int? { values[name].flatMap { Int($0) } }
    public func flag(_ name: String) -> Bool { values[name] == "true" }
    public subscript(_ name: String) -> String? { values[name] }
}

/// One list of the API (`GET /v1/stock`, `/v1/deployments`, ...): its filters, the HXL hashtag of each column,
/// and how to read one page of rows after a cursor, in key order. Exports page through the whole list with it.
public struct ListSpec: Sendable {
    public let name: String
    public let summary: String
    public let filters: [ListFilter]
    /// The HXL hashtag of every column the list has (DOMAIN.md, "HXL for every list").
    public let hxl: [String: String]
    /// The projections whose read-model tables `fetch` reads, every one of them (coordd serves an answer again
    /// while none of them changed); empty: the list reads something else (the log, the checkpoints).
    public let reads: [String]
    let fetch: @Sendable (ListSource, ListArguments, _ limit: Int, _ after: String?) async throws -> ResultTable
    /// The cursor key of a row: the list's sort key, which `fetch` continues after.
    let key: @Sendable (ResultTable, Int) -> String

    init(_ name: String, _ summary: String, filters: [ListFilter] = [], hxl: [String: String], reads: [String] = [],
         key: @escaping @Sendable (ResultTable, Int) -> String,
         fetch: @escaping @Sendable (ListSource, ListArguments, Int, String?) async throws -> ResultTable) {
        (self.name, self.summary, self.filters, self.hxl, self.reads, self.key, self.fetch) = (name, summary, filters, hxl, reads, key, fetch)
    }

    /// A key from one column (an id, a code, a position).
    static func column(_ name: String) -> @Sendable (ResultTable, Int) -> String { columns(name) }

    /// A key from several columns, joined by `:` (the first may not hold one; the last may).
    static func columns(_ names: String...) -> @Sendable (ResultTable, Int) -> String {
        { table, row in names.map { table.rows[row][table.columns.firstIndex(of: $0)!] ?? "" }.joined(separator: ":") }
    }

    /// Checks every filter of `query` (the request's query parameters; those the list does not declare are the
    /// caller's to refuse) and returns them parsed; a bad value is a validation error naming the parameter.
    public func arguments(_ query: [String: String], today: Day = Day(Date())) throws -> ListArguments {
        ListArguments(try ListFilter.check(filters, query), today: today)
    }

    /// Plain digits, with no sign, exponent or spaces (`Int("+3")` would take a sign).
    public static func isDecimalText(_ s: String) -> Bool { !s.isEmpty && s.utf8.count <= 18 && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }

    /// Up to `limit` rows after the cursor key `after`, and the key to continue from when there may be more.
    public func page(_ source: ListSource, _ arguments: ListArguments, limit: Int, after: String?) async throws -> (table: ResultTable, next: String?) {
        let table = try await fetch(source, arguments, limit, after)
        let next = table.rows.count == limit && limit > 0 ? key(table, table.rows.count - 1) : nil
        return (table, next)
    }

    /// Every row, page by page (`pageSize` at a time, each page one short query): what an export streams.
    public func forEachPage(_ source: ListSource, _ arguments: ListArguments, pageSize: Int = 1000,
                            _ body: (ResultTable) async throws -> Bool) async throws {
        var after: String?
        while true {
            let (table, next) = try await page(source, arguments, limit: pageSize, after: after)
            guard try await body(table), let next else { return }
            after = next
        }
    }
}

/// What lists read from: the read models, and the log for `/v1/events`.
public struct ListSource: Sendable {
    public let queries: ReadModelQueries
    /// Where lists read the log and the read models: the primary, or a standby.
    public let store: EventStore
    /// Whether this process leads a projection (coordd's runner knows; coordctl has none).
    public let leads: @Sendable (String) -> Bool

    /// The primary: where the projections' status is read (their leaders and errors are the primary's business).
    public let primary: EventStore

    /// `reads`: a store on a streaming standby (`COORD_READ_DATABASE_URL`) that serves the read models and the log to
    /// lists; by default the primary does.
    public init(store: EventStore, reads: EventStore? = nil, leads: @escaping @Sendable (String) -> Bool = { _ in false }) {
        self.primary = store
        self.store = reads ?? store
        self.queries = ReadModelQueries(pool: self.store.pool)
        self.leads = leads
    }
}

/// Every list of the API, by name. Each is declared in its feature's folder (`Stock/StockLists.swift`, ...).
public enum Lists {
    public static var all: [ListSpec] {
        [warehouses, items, stock, ledger, transfers, responses, people, deployments, tasks, alerts, events, projections]
    }
}
