// Package accounts holds the integration tests of stored OAuth 2.0
// accounts: upstream's refreshing credential over the service/tokens stores
// (bbolt and a real Redis), against the X emulator. It has no code of its
// own; it sits under cmd/ because it uses both upstream and service, as
// only the commands may.
package accounts
