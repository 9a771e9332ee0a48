from training.train import main

raise SystemExit(main())
