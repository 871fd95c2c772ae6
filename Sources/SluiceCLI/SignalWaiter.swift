import Dispatch
import Foundation

/// Calls a handler on the first SIGINT or SIGTERM, in place of the default action of ending
/// the process, so daemons can shut down cleanly.
final class SignalWaiter: @unchecked Sendable {
    // @unchecked: `sources` is written once in init and only read afterwards.
    private var sources: [DispatchSourceSignal] = []

    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { handler(signalNumber) }
            source.resume()
            sources.append(source)
        }
    }

    /// Restores the default signal actions.
    func cancel() {
        for source in sources {
            source.cancel()
        }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
