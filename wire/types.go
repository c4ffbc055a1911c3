package wire

// newPayload returns a new zero payload for t, or nil if t is unknown.
func newPayload(t Type) any {
	switch t {
	case THello:
		return new(Hello)
	case TSignup:
		return new(Signup)
	case TLogin:
		return new(Login)
	case TResume:
		return new(Resume)
	case TLogout:
		return new(Logout)
	case TContactOp:
		return new(ContactOp)
	case TListContacts:
		return new(ListContacts)
	case TSetPresence:
		return new(SetPresence)
	case TSetReach:
		return new(SetReach)
	case TSend:
		return new(Send)
	case TReceipt:
		return new(Receipt)
	case TAck:
		return new(Ack)
	case TSync:
		return new(Sync)
	case THistory:
		return new(History)
	case TPing:
		return new(Ping)
	case TIceServers:
		return new(IceServers)
	case TSignal:
		return new(Signal)
	case TCopy:
		return new(Copy)
	case TPathReport:
		return new(PathReport)
	case TPublishKeys:
		return new(PublishKeys)
	case TFetchKeys:
		return new(FetchKeys)
	case TChangePassword:
		return new(ChangePassword)
	case TKeys:
		return new(Keys)
	case TPutChunk:
		return new(PutChunk)
	case TArchiveSet:
		return new(ArchiveSet)
	case TArchivePut:
		return new(ArchivePut)
	case TArchiveGet:
		return new(ArchiveGet)
	case TArchiveKeyPut:
		return new(ArchiveKeyPut)
	case TArchiveState:
		return new(ArchiveState)
	case TTyping:
		return new(Typing)
	case TRemoveDevice:
		return new(RemoveDevice)
	case TTypingIn:
		return new(TypingIn)
	case THaveChunks:
		return new(HaveChunks)
	case TGetChunk:
		return new(GetChunk)
	case TChunks:
		return new(Chunks)
	case TChunk:
		return new(Chunk)
	case TKeysChanged:
		return new(KeysChanged)
	case TIceConfig:
		return new(IceConfig)
	case TSignalIn:
		return new(SignalIn)
	case TWelcome:
		return new(Welcome)
	case TAuthed:
		return new(Authed)
	case TOK:
		return new(OK)
	case TError:
		return new(Error)
	case TContacts:
		return new(Contacts)
	case TSendAck:
		return new(SendAck)
	case TPresence:
		return new(Presence)
	case TContactUpdate:
		return new(ContactUpdate)
	case TMsg:
		return new(Msg)
	case TRcpt:
		return new(Rcpt)
	case TInbox:
		return new(Inbox)
	case TReach:
		return new(Reach)
	case TMessages:
		return new(Messages)
	case TPong:
		return new(Pong)
	case TBye:
		return new(Bye)
	}
	return nil
}

// TypeOf returns the frame type of a payload (a struct of this package or a
// pointer to one).
func TypeOf(v any) (Type, bool) {
	switch v.(type) {
	case Hello, *Hello:
		return THello, true
	case Signup, *Signup:
		return TSignup, true
	case Login, *Login:
		return TLogin, true
	case Resume, *Resume:
		return TResume, true
	case Logout, *Logout:
		return TLogout, true
	case ContactOp, *ContactOp:
		return TContactOp, true
	case ListContacts, *ListContacts:
		return TListContacts, true
	case SetPresence, *SetPresence:
		return TSetPresence, true
	case SetReach, *SetReach:
		return TSetReach, true
	case Send, *Send:
		return TSend, true
	case Receipt, *Receipt:
		return TReceipt, true
	case Ack, *Ack:
		return TAck, true
	case Sync, *Sync:
		return TSync, true
	case History, *History:
		return THistory, true
	case Ping, *Ping:
		return TPing, true
	case IceServers, *IceServers:
		return TIceServers, true
	case Signal, *Signal:
		return TSignal, true
	case Copy, *Copy:
		return TCopy, true
	case PathReport, *PathReport:
		return TPathReport, true
	case PublishKeys, *PublishKeys:
		return TPublishKeys, true
	case FetchKeys, *FetchKeys:
		return TFetchKeys, true
	case ChangePassword, *ChangePassword:
		return TChangePassword, true
	case Keys, *Keys:
		return TKeys, true
	case PutChunk, *PutChunk:
		return TPutChunk, true
	case Typing, *Typing:
		return TTyping, true
	case RemoveDevice, *RemoveDevice:
		return TRemoveDevice, true
	case TypingIn, *TypingIn:
		return TTypingIn, true
	case HaveChunks, *HaveChunks:
		return THaveChunks, true
	case GetChunk, *GetChunk:
		return TGetChunk, true
	case Chunks, *Chunks:
		return TChunks, true
	case Chunk, *Chunk:
		return TChunk, true
	case ArchiveSet, *ArchiveSet:
		return TArchiveSet, true
	case ArchivePut, *ArchivePut:
		return TArchivePut, true
	case ArchiveGet, *ArchiveGet:
		return TArchiveGet, true
	case ArchiveKeyPut, *ArchiveKeyPut:
		return TArchiveKeyPut, true
	case ArchiveState, *ArchiveState:
		return TArchiveState, true
	case KeysChanged, *KeysChanged:
		return TKeysChanged, true
	case IceConfig, *IceConfig:
		return TIceConfig, true
	case SignalIn, *SignalIn:
		return TSignalIn, true
	case Welcome, *Welcome:
		return TWelcome, true
	case Authed, *Authed:
		return TAuthed, true
	case OK, *OK:
		return TOK, true
	case Error, *Error:
		return TError, true
	case Contacts, *Contacts:
		return TContacts, true
	case SendAck, *SendAck:
		return TSendAck, true
	case Presence, *Presence:
		return TPresence, true
	case ContactUpdate, *ContactUpdate:
		return TContactUpdate, true
	case Msg, *Msg:
		return TMsg, true
	case Rcpt, *Rcpt:
		return TRcpt, true
	case Inbox, *Inbox:
		return TInbox, true
	case Reach, *Reach:
		return TReach, true
	case Messages, *Messages:
		return TMessages, true
	case Pong, *Pong:
		return TPong, true
	case Bye, *Bye:
		return TBye, true
	}
	return 0, false
}
