// Package auth holds what natterd needs to log people in safely: argon2id
// password hashing on a bounded worker pool (so a flood of logins cannot
// starve message routing), resumable session tokens, and a throttle that
// grows the back-off after wrong passwords.
package auth
