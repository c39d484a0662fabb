package accounts_test

import "os"

var osExit = os.Exit
