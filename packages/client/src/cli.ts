// The `wf` command's entry point (bin/wf.js imports the compiled form): runs the program on this
// process's arguments and exits with its code.

import { main } from './cli/program.js'

process.exitCode = await main(process.argv)
