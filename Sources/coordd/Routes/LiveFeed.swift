import Coordination
import Events
import Foundation
import Synchronization

/// The shared tail reader cannot read the log.
struct FeedUnavailable: Error {}

/// Where an attached feed is: the last position its tail reader's deliveries took.
final class FeedCursor: Sendable {
    let position: Mutex<Int64>
    init(_ position: Int64) { self.position = Mutex(position) }
}

enum LiveFeed {
    static let parameters = [
        ListFilter("after", .integer(0...Int.max), "Resume after this position (or the Last-Event-ID header)"),
        ListFilter("type", .text, "Only these event types, comma-separated"),
        ListFilter("stream", .text, "Only this stream"),
        ListFilter("category", .text, "Only these stream categories, comma-separated (stock, task, ...)"),
        ListFilter("response", .id, "Only events that concern this response (the replay's rule: its tasks' comments included)"),
    ]
}

extension App {
    /// The live feed: history after the resume point, then live events, each once, in position order. A feed
    /// that cannot read the log (the database is down) ends, so its client reconnects and resumes, rather than
    /// idling on heartbeats while events pass it by.
    func liveFeed(_ ctx: RequestContext) async throws -> HTTPResponse {
        let resume = ctx.request.header("last-event-id") ?? ctx.query["after"] ?? "0"
        guard ListSpec.isDecimalText(resume), let after = Int64(resume) else {
            throw Problem(status: 422, errors: [FieldError("after", "must be a position")])
        }
        var filter = EventFilter()
        if let c = ctx.query["category"] { filter.categories = c.split(separator: ",").map(String.init) }
        if let t = ctx.query["type"] { filter.types = t.split(separator: ",").map(String.init) }
        if let s = ctx.query["stream"] { filter.streams = [s] }
        let response = ctx.query["response"]
        // With ?response=, every event is read (the membership learns from creations whatever their type) and
        // the filter is applied here; without, history is read already filtered.
        let historyFilter = response == nil ? filter : EventFilter.all
        let selected = filter
        let store = service.store
        let fanout = self.fanout
        let logger = self.logger
        let requestID = ctx.requestID
        // Alerts come on every feed that does not narrow the events to types, streams or categories, or that names
        // `alert` among its types; `?response=` keeps that response's alerts.
        let wantsAlerts = (ctx.query["type"] == nil && ctx.query["stream"] == nil && ctx.query["category"] == nil)
            || (ctx.query["type"]?.split(separator: ",").contains("alert") ?? false)
        let alertFeed = self.alertFeed
        let principal = ctx.principal
        let personalData = principal?.personalData == true
        let pool = service.store.pool
        let alertCursor = wantsAlerts ? try? await alertFeed.open() : nil
        let scope = try await readScope(ctx)
        let queries = lists.queries
        return .streamed(200, headers: [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-store"),
                                        ("X-Accel-Buffering", "no")], framing: .eventStream) { stream in
            stream.send(Array("retry: 2000\n\n".utf8))
            let work = Task {
                do {
                    try await fanout.start()
                    var membership: ResponseMembership?
                    if let response { membership = try await ResponseMembership.learnt(response: response, from: store, through: after) }
                    // History from the store up to the shared window of recent events, then the window: the tail is
                    // read once for every feed (EventFanout). Positions only move forward: nothing skipped or repeated.
                    var position = after
                    // People whose personal data this feed has shown since the last record of it (personal-data access).
                    var shown: [String] = []
                    // A scoped feed's streams, shown or not (App.learnVisibility), learnt before each batch is delivered.
                    var known: [String: Bool] = [:]
                    func learn(_ events: [RecordedEvent]) async throws {
                        if let scope { try await Self.learnVisibility(events, scope, known: &known, queries: queries) }
                    }
                    // What the feed pulls (history, the window, a direct read) goes at the client's pace: the feed waits
                    // for room before each send, so a catch-up of thousands of events never overruns the stream.
                    func deliver(_ event: RecordedEvent, _ rendered: [UInt8]?) async -> Bool {
                        guard await stream.room() else { return false }
                        if scope != nil, known[ReadScope.subject(of: event)] != true { return true }
                        if membership != nil {
                            guard let decoded = try? EventCodec.decode(event), membership!.concerns(decoded), selected.matches(event) else { return true }
                        } else if !selected.matches(event) {
                            return true
                        }
                        if PersonalData.isPersonal(event.type) {
                            guard personalData else { return stream.send(Self.sseMessage(PersonalData.redact(event))) }
                            shown.append(contentsOf: PersonalData.people(in: [event]))
                        }
                        return stream.send(rendered ?? Self.sseMessage(event))
                    }
                    func recordShown() async throws {
                        guard let principal, !shown.isEmpty else { return }
                        try await PersonalData.recordRead(pool, principal: principal, route: "GET /v1/events/live", people: Array(Set(shown)).sorted(),
                                                          requestID: requestID)
                        shown.removeAll()
                    }
                    while stream.isOpen, !Task.isCancelled {
                        try await recordShown()
                        switch fanout.events(after: position, limit: 500) {
                        case .history(let until):
                            let batch = try await store.read(after: position, limit: 500, filter: historyFilter, until: .position(until))
                            try await learn(batch)
                            for event in batch where !(await deliver(event, nil)) { return }
                            position = batch.count < 500 ? until : batch.last!.position
                        case .events(let batch):
                            if batch.isEmpty {
                                if fanout.isUnreadable {
                                    // The shared reader is failing or backing off: read the store directly (a
                                    // failure ends the feed), so a feed opened just after a recovery catches up.
                                    let direct = try await store.read(after: position, limit: 500, filter: historyFilter)
                                    try await learn(direct)
                                    for event in direct where !(await deliver(event, nil)) { return }
                                    if let last = direct.last { position = last.position } else { try await Task.sleep(nanoseconds: 250_000_000) }
                                    continue
                                }
                                // Caught up: unless this feed must do something asynchronous with what it is sent
                                // (learn a scope's or a response's streams), the tail reader delivers to it itself.
                                if scope == nil, membership == nil {
                                    let pushed = FeedCursor(position)
                                    let push = { @Sendable (batch: [EventFanout.Delivery]) -> Bool in
                                        Self.push(batch, to: stream, filter: selected, personalData: personalData, position: pushed)
                                    }
                                    if let attachment = fanout.attach(at: position, push) {
                                        await attachment.detached()
                                        position = pushed.position.withLock { $0 }
                                        continue
                                    }
                                }
                                await fanout.wait(after: position)
                                continue
                            }
                            try await learn(batch.map(\.0))
                            for (event, rendered) in batch {
                                position = event.position
                                if !(await deliver(event, rendered)) { return }
                            }
                        }
                    }
                } catch {
                    logger.warning("live feed ended: the log cannot be read", ["request.id": requestID, "error": String(describing: type(of: error))])
                    stream.send(Array("event: unavailable\ndata: {\"reason\":\"the database is unavailable; reconnect\"}\n\n".utf8))
                }
                stream.finish()
            }
            let alerts = Task {
                guard var cursor = alertCursor else { return }
                while stream.isOpen, !Task.isCancelled {
                    for m in alertFeed.messages(after: cursor) {
                        cursor = m.seq
                        if let response, m.response != response { continue }
                        if let scope, await !Self.reaches(scope, alert: m, queries: queries) { continue }
                        if !stream.send(Self.alertMessage(m)) { return }
                    }
                    await alertFeed.wait(after: cursor)
                    if alertFeed.isStopped { return }
                }
            }
            // Heartbeats keep proxies from closing an idle feed, and notice when the client is gone: then the
            // reader, which may be waiting for the next event, is cancelled.
            while stream.isOpen {
                try? await Task.sleep(nanoseconds: 15_000_000_000)
                stream.send(Array(": heartbeat\n\n".utf8))
            }
            work.cancel()
            alerts.cancel()
        }
    }

    /// What an attached feed does with a batch, on the tail reader's task: each event it selects goes out as
    /// `deliver` would send it, and `position` moves past it. False (detach) when the stream is over; when the
    /// stream is backed up (a burst the client reads slower than it comes: the feed's own task pulls the rest at the
    /// client's pace rather than the connection being dropped); or at an event that shows personal data to a
    /// principal allowed to see it: the feed's own task sends that one, as it records the read (in the database),
    /// which the reader's task must not wait for.
    static func push(_ batch: [EventFanout.Delivery], to stream: ResponseStream, filter: EventFilter, personalData: Bool,
                     position: FeedCursor) -> Bool {
        position.position.withLock { p in
            for (event, rendered) in batch where event.position > p {
                if filter.matches(event) {
                    if stream.isBackedUp { return false }
                    if PersonalData.isPersonal(event.type) {
                        if personalData { return false }
                        if !stream.send(Self.sseMessage(PersonalData.redact(event))) { return false }
                    } else if !stream.send(rendered) {
                        return false
                    }
                }
                p = event.position
            }
            return true
        }
    }

    /// An alert raised or cleared: `event: alert`, no id (the feed's ids are the log's positions).
    static func alertMessage(_ m: AlertOutbox.Message) -> [UInt8] {
        Array("event: alert\ndata: {\"type\":\(JSONWriter.quote(m.type)),\"alert\":\(m.alert)}\n\n".utf8)
    }

    /// One Server-Sent Events message: the position as id, the type as event name, the event as data.
    static func sseMessage(_ event: RecordedEvent) -> [UInt8] {
        Array(("id: \(event.position)\nevent: \(event.type)\ndata: " + event.json() + "\n\n").utf8)
    }
}
