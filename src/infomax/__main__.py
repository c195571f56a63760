from infomax.cli import main

raise SystemExit(main())
