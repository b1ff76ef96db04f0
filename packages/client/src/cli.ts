// The `wf` command's entry point (bin/wf.js imports the compiled form): runs the program on this
// process's arguments and exits with its code.

import { main } from './cli/program.js'

// The AWS SDK warns on every S3 command that its later releases will need Node 22; @wf/storage-s3
// pins a release that runs on Node 20, so the notice is noise here (wf's own warnings still show).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

process.exitCode = await main(process.argv)
