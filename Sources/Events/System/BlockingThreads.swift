import Foundation

/// Threads for work that blocks (libpq calls, blocking sockets), grown on demand up to a bound.
///
/// Not Dispatch's global queue: on Linux it runs only a handful of blocked work items at once (64 closures
/// sleeping 100 ms each take 1.3 to 1.9 s there), which made every libpq call in the process queue behind
/// four or five others whatever the connection pool's size. Idle threads end after `idleTimeout`.
public final class BlockingThreads: @unchecked Sendable {
    public static let shared = BlockingThreads(maxThreads: 256)

    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    private let maxThreads: Int
    private let idleTimeout: TimeInterval

    public init(maxThreads: Int, idleTimeout: TimeInterval = 30) {
        self.maxThreads = max(1, maxThreads)
        self.idleTimeout = idleTimeout
    }

    /// Runs `job` on one of the threads; starts a thread when none is idle and the bound allows.
    public func run(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        let spawn = idle == 0 && threads < maxThreads
        if spawn { threads += 1 }
        condition.signal()
        condition.unlock()
        if spawn {
            let thread = Thread { [self] in work() }
            thread.name = "coord-blocking"
            thread.stackSize = 2 << 20
            thread.start()
        }
    }

    /// Threads started and not yet ended (for tests and metrics).
    public var threadCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return threads
    }

    private func work() {
        condition.lock()
        while true {
            while head == jobs.count {
                idle += 1
                let signalled = condition.wait(until: Date().addingTimeInterval(idleTimeout))
                idle -= 1
                if !signalled, head == jobs.count {
                    threads -= 1
                    condition.unlock()
                    return
                }
            }
            let job = jobs[head]
            head += 1
            if head > 1024, head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job()
            condition.lock()
        }
    }
}
