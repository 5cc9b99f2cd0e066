"""cdk-ses-bounce: the BounceProcessor construct."""
