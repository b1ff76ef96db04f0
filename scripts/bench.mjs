console.log('bench: not written yet (see the benchmark issue)')
