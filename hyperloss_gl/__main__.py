from hyperloss_gl.cli import main

raise SystemExit(main())
