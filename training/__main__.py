from training.train import main

if __name__ == "__main__":  # `python -m training`; importing this module runs nothing
    raise SystemExit(main())
