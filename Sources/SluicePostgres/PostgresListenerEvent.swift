/// An event delivered by `PostgresListener.notifications`.
public enum PostgresListenerEvent: Sendable, Hashable {
    /// A NOTIFY on a channel the listener listens on.
    /// - Parameters:
    ///   - channel: the channel name.
    ///   - payload: the payload text, empty when NOTIFY had none.
    ///   - processID: the process ID of the server backend that sent it.
    case notification(channel: String, payload: String, processID: Int32)

    /// The connection was lost and is open again, with every channel listened to again.
    /// Notifications sent while it was down are lost, so consumers should re-check the state
    /// they wait on.
    case reconnected
}
