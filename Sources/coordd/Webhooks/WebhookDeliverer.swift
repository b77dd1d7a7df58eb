import Coordination
import Events
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization

/// How coordd delivers webhooks (docs/ALERTS.md), from the environment.
struct WebhookSettings: Sendable {
    /// Seals and opens the subscriptions' secrets; nil: webhooks cannot be created (and none can be sent).
    var box: SecretBox?
    /// COORD_WEBHOOK_ALLOW_PRIVATE=1: URLs to loopback, link-local and private addresses are allowed.
    var allowPrivate = false
    /// First retry delay, doubling per attempt up to `retryCap`, with jitter; retried for `retryWindow` seconds.
    var retryBase = 5.0
    var retryCap = 3600.0
    var retryWindow = 86_400.0
    /// Seconds to connect (and of silence while waiting), and for the whole attempt.
    var connectTimeout = 5.0
    var timeout = 15.0
    /// Deliveries in flight per endpoint (across every coordd), and in this process.
    var perEndpoint = 4
    var maxInFlight = 32
    /// How often due deliveries are looked for.
    var poll = 0.5
    /// 0 turns delivery off in this process (another coordd delivers).
    var enabled = true

    init() {}

    static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment, target: DatabaseLocator.Target) throws -> WebhookSettings {
        var s = WebhookSettings()
        do { s.box = try WebhookSecrets.box(environment: env, target: target) } catch {
            throw ConfigurationError("COORD_SECRET_KEY_FILE: \(error)")
        }
        s.allowPrivate = env["COORD_WEBHOOK_ALLOW_PRIVATE"] == "1"
        s.enabled = env["COORD_WEBHOOK_DELIVERY"] != "0"
        func seconds(_ name: String, _ range: ClosedRange<Double>) throws -> Double? {
            guard let text = env[name], !text.isEmpty else { return nil }
            guard let v = Double(text), range.contains(v) else { throw ConfigurationError("\(name) must be seconds from \(range.lowerBound) to \(range.upperBound)") }
            return v
        }
        if let v = try seconds("COORD_WEBHOOK_RETRY_BASE", 0.1...3600) { s.retryBase = v }
        if let v = try seconds("COORD_WEBHOOK_RETRY_CAP", 0.1...86_400) { s.retryCap = v }
        if let v = try seconds("COORD_WEBHOOK_RETRY_WINDOW", 1...604_800) { s.retryWindow = v }
        if let v = try seconds("COORD_WEBHOOK_TIMEOUT", 1...300) { s.timeout = v }
        if let v = try seconds("COORD_WEBHOOK_CONNECT_TIMEOUT", 1...300) { s.connectTimeout = v }
        if let v = try seconds("COORD_WEBHOOK_CONCURRENCY", 1...64) { s.perEndpoint = Int(v) }
        return s
    }

    /// The delay before attempt `attempt + 1`: `retryBase * 2^(attempt-1)`, at most `retryCap`, times a random
    /// factor from 0.5 to 1 (jitter: endpoints that come back are not hit by every sender at once).
    func backoff(afterAttempt attempt: Int) -> Double {
        let exponential = min(retryCap, retryBase * pow(2, Double(max(0, min(attempt - 1, 30)))))
        return exponential * Double.random(in: 0.5...1.0)
    }
}

/// Standard Webhooks 1.0 signatures: `v1,` + base64(HMAC-SHA256(secret bytes, "<id>.<timestamp>.<body>")).
enum StandardWebhooks {
    static func signature(secret: [UInt8], id: String, timestamp: Int, body: [UInt8]) -> String {
        "v1," + Data(HMAC.sha256(key: secret, message: Array("\(id).\(timestamp).".utf8) + body)).base64EncodedString()
    }
}

/// Sends one POST with URLSession (FoundationNetworking): redirects are not followed (a 3xx is a failed attempt, so an
/// endpoint cannot bounce a delivery to an address the policy refuses), no cookies, no cache.
final class WebhookSender: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    private var session: URLSession!
    /// Set when coordd stops: a task asked of an invalidated session is a fatal error in FoundationNetworking, so
    /// tasks are created, and the session invalidated, under this lock.
    private let invalidated = Mutex(false)

    init(connectTimeout: Double, timeout: Double, perHost: Int) {
        super.init()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = connectTimeout
        configuration.timeoutIntervalForResource = timeout
        configuration.httpMaximumConnectionsPerHost = perHost
        configuration.httpShouldSetCookies = false
        configuration.httpCookieStorage = nil
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
    }

    func invalidate() {
        invalidated.withLock { gone in
            guard !gone else { return }
            gone = true
            session.invalidateAndCancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)
    }

    /// The status code, or why there is none.
    func post(_ url: URL, headers: [(String, String)], body: [UInt8]) async -> (status: Int?, error: String?) {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = Data(body)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let session = self.session!
        return await withCheckedContinuation { continuation in
            let started = invalidated.withLock { gone -> Bool in
                guard !gone else { return false }
                session.dataTask(with: request) { _, response, error in
                    if let http = response as? HTTPURLResponse {
                        continuation.resume(returning: (http.statusCode, nil))
                    } else {
                        continuation.resume(returning: (nil, Self.describe(error)))
                    }
                }.resume()
                return true
            }
            if !started { continuation.resume(returning: (nil, "coordd is stopping")) }
        }
    }

    static func describe(_ error: Error?) -> String {
        guard let error = error as? URLError else { return error.map { String(describing: type(of: $0)) } ?? "no answer" }
        switch error.code {
        case .cannotConnectToHost: return "connection refused"
        case .timedOut: return "timed out"
        case .cannotFindHost, .dnsLookupFailed: return "host not found"
        case .networkConnectionLost: return "connection lost"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid,
             .serverCertificateHasUnknownRoot, .clientCertificateRejected:
            return "TLS handshake failed"
        case .badServerResponse: return "malformed answer"
        default:
            // libcurl's own message (FoundationNetworking maps most of its codes to .unknown): "SSL certificate
            // problem: self-signed certificate", "Could not resolve host: ...". It names no path or query.
            let message = String(error.localizedDescription.prefix(200))
            if message.hasPrefix("SSL") { return "TLS handshake failed (\(message))" }
            return message.isEmpty ? "network error \(error.code.rawValue)" : "network error: \(message)"
        }
    }
}

/// Delivers webhooks: leases due deliveries (one sender per delivery across every coordd), signs and sends each, and
/// records the outcome (retry with backoff, disable on 410, failed for good after the retry window, kept).
final class WebhookDeliverer: Sendable {
    let store: WebhookStore
    let settings: WebhookSettings
    let logger: Logger
    let owner: String
    private let sender: WebhookSender
    private let inFlight = Mutex(0)
    /// Attempts by outcome (`delivered`, `failed`, `gone`, `exhausted`), for /metrics.
    let outcomes = Mutex<[String: Int]>([:])
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(pool: PostgresPool, settings: WebhookSettings, logger: Logger) {
        self.store = WebhookStore(pool: pool)
        self.settings = settings
        self.logger = logger
        self.owner = "coordd-\(ProcessInfo.processInfo.hostName)-\(getpid())-\(UUID.random().lowercasedString.prefix(8))"
        self.sender = WebhookSender(connectTimeout: settings.connectTimeout, timeout: settings.timeout, perHost: settings.perEndpoint)
    }

    /// Without the key this coordd could sign nothing: it leaves the deliveries to a coordd that has it, rather than
    /// spend their attempts failing.
    func start() {
        guard settings.enabled, settings.box != nil else { return }
        task.withLock { $0 = Task.detached { [self] in await self.loop() } }
    }

    func stop() {
        task.withLock { $0?.cancel(); $0 = nil }
        sender.invalidate()
    }

    private func loop() async {
        var failures = 0
        while !Task.isCancelled {
            do {
                let capacity = settings.maxInFlight - inFlight.withLock { $0 }
                let claimed = try await store.claim(owner: owner, max: capacity, perEndpoint: settings.perEndpoint,
                                                    lease: settings.timeout + 30)
                failures = 0
                for delivery in claimed {
                    inFlight.withLock { $0 += 1 }
                    Task.detached { [self] in
                        await self.send(delivery)
                        self.inFlight.withLock { $0 -= 1 }
                    }
                }
                if claimed.count < capacity { try? await Task.sleep(nanoseconds: UInt64(settings.poll * 1e9)) }
            } catch {
                failures += 1
                if failures == 1 || failures % 60 == 0 { logger.warning("webhook delivery paused: the database is unavailable") }
                try? await Task.sleep(nanoseconds: UInt64(min(5, 0.5 * Double(failures)) * 1e9))
            }
        }
    }

    /// One attempt of one delivery.
    func send(_ delivery: WebhookStore.Claimed) async {
        let started = Date()
        let outcome = await attempt(delivery)
        let ms = Date().timeIntervalSince(started) * 1000
        let delay = settings.backoff(afterAttempt: delivery.attempt)
        var status = "pending"
        for _ in 0..<5 {
            do {
                status = try await store.record(delivery, owner: owner, outcome: outcome, durationMs: ms, retryIn: delay, window: settings.retryWindow)
                break
            } catch {
                // The database is away: the lease lapses and the delivery is sent again (at least once).
                try? await Task.sleep(nanoseconds: 1_000_000_000)
            }
        }
        let name: String
        switch outcome {
        case .delivered: name = "delivered"
        case .gone: name = "gone"
        case .failed: name = status == "failed" ? "exhausted" : "failed"
        }
        outcomes.withLock { $0[name, default: 0] += 1 }
        var fields = ["webhook.id": delivery.webhook, "delivery.id": delivery.id, "attempt": String(delivery.attempt), "outcome": name,
                      "duration_ms": String(format: "%.1f", ms)]
        if case .failed(let code, let error) = outcome { fields["error"] = error; fields["http.status"] = code.map(String.init) ?? "" }
        if name == "delivered" { logger.info("webhook delivered", fields) } else { logger.warning("webhook attempt failed", fields) }
    }

    private func attempt(_ delivery: WebhookStore.Claimed) async -> WebhookStore.Outcome {
        guard let box = settings.box else { return .failed(status: nil, error: "no secret key on this coordd (COORD_SECRET_KEY_FILE)") }
        let secret: [UInt8]
        do { secret = try box.open(delivery.sealedSecret) } catch { return .failed(status: nil, error: "\(error)") }
        guard let url = URL(string: delivery.url), let host = url.host else { return .failed(status: nil, error: "the URL cannot be read") }
        // Checked again at every attempt: a name that resolved to a public address when subscribed may not now.
        let allow = settings.allowPrivate
        do { _ = try await runBlocking { try AddressPolicy.check(host: host, allowPrivate: allow) } } catch {
            return .failed(status: nil, error: "refused: \(error)")
        }
        let timestamp = Int(Date().timeIntervalSince1970)
        let body = Array(delivery.body.utf8)
        let headers = [("Content-Type", "application/json"), ("User-Agent", "coord-webhooks/\(Coordination.version)"),
                       ("webhook-id", delivery.id), ("webhook-timestamp", String(timestamp)),
                       ("webhook-signature", StandardWebhooks.signature(secret: secret, id: delivery.id, timestamp: timestamp, body: body))]
        let (status, error) = await sender.post(url, headers: headers, body: body)
        guard let status else { return .failed(status: nil, error: error ?? "no answer") }
        if (200..<300).contains(status) { return .delivered(status: status) }
        if status == 410 { return .gone }
        return .failed(status: status, error: "HTTP \(status)")
    }
}

/// The alert transitions for the live feeds: read once for every feed, every half second while feeds are open.
/// A feed waits for new transitions (`wait(after:)`) instead of polling: 500 open feeds polling four times a second
/// cost 2,000 wake-ups a second doing nothing.
final class AlertFeed: Sendable {
    let pool: PostgresPool
    private struct State {
        var started = false
        var stopped = false
        var last: Int64 = 0
        var recent: [AlertOutbox.Message] = []
    }
    private let state = Mutex(State())
    private let waiters = Waiters()
    private let poller = Mutex<Task<Void, Never>?>(nil)

    init(pool: PostgresPool) { self.pool = pool }

    /// Starts reading (once) and returns the cursor a new feed starts from: alerts after this moment.
    func open() async throws -> Int64 {
        if let last = state.withLock({ $0.started ? $0.last : nil }) { return last }
        let latest = try await AlertOutbox.latest(pool)
        let begin = state.withLock { s -> Bool in
            if s.started { return false }
            (s.started, s.last) = (true, latest)
            return true
        }
        if begin {
            let pool = self.pool
            poller.withLock { $0 = Task.detached { [self] in
                while !Task.isCancelled {
                    let after = state.withLock { $0.last }
                    if let fresh = try? await AlertOutbox.transitions(pool, after: after), let last = fresh.last {
                        state.withLock { s in
                            s.recent.append(contentsOf: fresh)
                            if s.recent.count > 2000 { s.recent.removeFirst(s.recent.count - 1000) }
                            s.last = last.seq
                        }
                        waiters.resumeAll()
                    }
                    try? await Task.sleep(nanoseconds: 500_000_000)
                }
            } }
        }
        return state.withLock { $0.last }
    }

    func messages(after seq: Int64) -> [AlertOutbox.Message] {
        state.withLock { s in s.recent.last.map { $0.seq > seq } == true ? s.recent.filter { $0.seq > seq } : [] }
    }

    /// True once `stop` was called (coordd is shutting down): a waiting feed stops waiting for alerts.
    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Returns when a transition after `seq` has been read, when the feed stops, or when the task is cancelled.
    func wait(after seq: Int64) async {
        await waiters.wait { state.withLock { $0.last > seq || $0.stopped } }
    }

    func stop() {
        poller.withLock { $0?.cancel(); $0 = nil }
        state.withLock { $0.stopped = true }
        waiters.resumeAll()
    }
}
