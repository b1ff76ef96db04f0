#!/usr/bin/env node
// The `wf` command. The real code is compiled to dist/cli.js; this file exists before any build
// so package managers can link the bin on install.
import '../dist/cli.js'
