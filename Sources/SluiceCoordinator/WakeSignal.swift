import Dispatch
import Foundation

/// Wakes one sleeping coordinator loop early: on a timer notification, a listener reconnect
/// or a stop request.
///
/// A signal that arrives while nobody waits is kept, so the next `wait` returns at once and
/// a notification sent between a tick and the following sleep is not lost. A stop is sticky:
/// every later `wait` returns `.stop` at once.
final class WakeSignal: @unchecked Sendable {
    // @unchecked: every `var` below is guarded by `lock`.

    /// Why a wait ended.
    enum Reason: Sendable, Hashable {
        case timeout
        case notification
        case reconnected
        case stop
    }

    private let lock = NSLock()
    private var pending: Reason?
    private var isStopped = false
    private var waiter: CheckedContinuation<Reason, Never>?
    private var waitNumber = 0

    /// Ends the current or next wait with `reason`.
    func signal(_ reason: Reason) {
        lock.lock()
        if reason == .stop {
            isStopped = true
        }
        guard let waiter else {
            if pending != .stop {
                pending = reason
            }
            lock.unlock()
            return
        }
        self.waiter = nil
        lock.unlock()
        waiter.resume(returning: reason)
    }

    /// Forgets a kept signal other than stop; called before a tick, which sees the state the
    /// signal announced.
    func clearPending() {
        lock.lock()
        if pending != .stop {
            pending = nil
        }
        lock.unlock()
    }

    /// Waits until a signal arrives or `timeout` passes. One caller at a time.
    func wait(timeout: Duration) async -> Reason {
        await withCheckedContinuation { continuation in
            lock.lock()
            if isStopped {
                lock.unlock()
                continuation.resume(returning: .stop)
                return
            }
            if let pending {
                self.pending = nil
                lock.unlock()
                continuation.resume(returning: pending)
                return
            }
            waiter = continuation
            waitNumber += 1
            let number = waitNumber
            lock.unlock()

            let nanoseconds = Self.nanoseconds(timeout)
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
                self.expire(waitNumber: number)
            }
        }
    }

    /// Ends wait number `number` with `.timeout` if it is still waiting.
    private func expire(waitNumber number: Int) {
        lock.lock()
        guard let waiter, waitNumber == number else {
            lock.unlock()
            return
        }
        self.waiter = nil
        lock.unlock()
        waiter.resume(returning: .timeout)
    }

    private static func nanoseconds(_ duration: Duration) -> Int {
        let components = duration.components
        let total = Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9
        return Int(min(max(total, 0), Double(Int.max / 2)))
    }
}
