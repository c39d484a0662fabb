// Package policy is mediagw's authorization: the callers policy (which
// callers may use which X accounts, whether they may pass their own X
// user tokens, and their quotas), read from the --callers file, and the
// named X accounts of the --accounts file. An upload is checked and
// charged once, before INIT ([Policies.Admit]); what it did not use is
// given back when it ends ([Ticket.Done]).
package policy
