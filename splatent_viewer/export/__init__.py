"""Camera paths and video writing for flythrough exports."""
