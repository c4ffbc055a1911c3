// Package tui is natter's full-screen terminal client: the login form, the
// contact list, the conversations, the offline inbox and the IRC-style
// commands, built on bubbletea (the Elm architecture), bubbles and lipgloss.
//
// # Shape
//
// Run starts the program with a Config. The UI talks to the service only
// through two small interfaces defined here, where they are consumed:
// Backend, which *client.Client satisfies method for method, and Local,
// what the app keeps on this device
// (the local history and its search) that the natter command fills in from
// its home folder. A Session bundles both with the user's name; a LoginFunc
// makes one from the login form.
//
// Update never does I/O. Every network or disk call is a tea.Cmd whose
// result comes back as a message, and the SDK's events are read by a Cmd
// that hands them over one at a time, so a slow server or a key fetch never
// freezes typing.
//
// # Wiring
//
// The natter command fills a Config: the resumed Session if the home has
// one (Backend: the *client.Client, dialled with Direct on and without
// AutoDeliveredReceipts, since the UI confirms deliveries itself; Local:
// the home's history and its notes of events; End: close the client, and
// forget the stored session when loggedOut), a LoginFunc for the form (the
// home's dial and signup or login, asking TrustFunc instead of printing the
// trust-on-first-use notice), and Translate, which turns the SDK's typing
// event into a TypingMsg. Nothing may write to the terminal while Run runs.
//
// # Screens
//
// The model is one App holding a model per screen: loginForm (login.go),
// contactList (contacts.go), the conversations (conv.go, chat.go), the
// offline inbox (inbox.go) and the panels that commands open (panel.go).
// Wide terminals show the contact list on the left and the open screen on
// the right; below wideWidth columns one of them fills the screen.
//
// # Rendering long conversations
//
// A conversation keeps each message's wrapped lines in a cache keyed by the
// width and by what the message shows (its delivery state, a date line, a
// highlight). Scrolling is an anchor (a message and how many of its lines
// are hidden below the bottom edge), so a frame renders only the messages on
// screen, a new message renders one more, and a resize re-wraps lazily, as
// messages come into view. BenchmarkFrame measures it over 100,000 messages.
package tui
