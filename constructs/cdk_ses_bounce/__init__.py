"""cdk-ses-bounce: the BounceProcessor construct."""

from cdk_ses_bounce.activation import RuleSetActivation
from cdk_ses_bounce.alarms import BounceProcessorAlarms
from cdk_ses_bounce.bounce_processor import BounceProcessor
from cdk_ses_bounce.budget import ISendBounceBudget, SendBounceBudget
from cdk_ses_bounce.dashboard import BounceDashboard
from cdk_ses_bounce.defaults import RECEIVING_REGIONS, RECEIVING_REGIONS_CONTEXT_KEY

__all__ = [
    "RECEIVING_REGIONS",
    "RECEIVING_REGIONS_CONTEXT_KEY",
    "BounceDashboard",
    "BounceProcessor",
    "BounceProcessorAlarms",
    "ISendBounceBudget",
    "RuleSetActivation",
    "SendBounceBudget",
]
