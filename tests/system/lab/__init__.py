"""Real-peer test lab for ikelb: network namespaces, strongSwan charons,
and a pluggable balancer (nft, snat, ikelb). See docs/lab.md."""
from .netns import LabError
from .topology import (LB_CLIENT_ADDR, LB_CLIENT_IF, LB_SERVER_ADDR, LB_SERVER_IF,
                       LB_CLIENT_ADDR6, LB_SERVER_ADDR6, NAT_PUBLIC, VIP, VIP6, InitResult,
                       Lab, teardown_saved_lab)
from .strongswan import GATEWAY_ID, PROTECTED
from .balancers import (BALANCERS, IkelbBalancer, NftBalancer, SnatBalancer,
                        ikelb_available, ikelb_bin, ikelb_config, start_balancer)

__all__ = ["Lab", "teardown_saved_lab", "LabError", "InitResult", "VIP", "LB_CLIENT_ADDR", "LB_SERVER_ADDR",
           "LB_CLIENT_IF", "LB_SERVER_IF", "NAT_PUBLIC", "VIP6", "LB_CLIENT_ADDR6", "LB_SERVER_ADDR6", "GATEWAY_ID", "PROTECTED",
           "BALANCERS", "NftBalancer", "SnatBalancer", "IkelbBalancer", "ikelb_available",
           "ikelb_bin", "ikelb_config", "start_balancer"]
