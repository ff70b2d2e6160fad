# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Large exec streams into and out of a pod: the exec WebSocket channel protocol spoken directly.

protocol (frames of the channel protocol, exit status) -> stream (one exec: a reader thread handing
stdout on, a writer thread feeding stdin, a deadline) -> pod (the pod options of a module to a
runner). Nothing here keeps a byte it has passed on. Nothing here imports Ansible.
"""
