"""DO NOT EDIT: generated from rtl/regs/ep_regs.rdl by `make regs` (python -m siov_sim.tb.regs)."""

from __future__ import annotations

from typing import Final

from siov_sim.sw.regs.base import Field, Reg

SWITCH_BASE: Final[int] = 0x40000
SWITCH_STRIDE: Final[int] = 0x4
SWITCH_COUNT_MAX: Final[int] = 4096
ADIS_BASE: Final[int] = 0x80000
ADIS_STRIDE: Final[int] = 0x80
ADIS_COUNT_MAX: Final[int] = 4096
PORTAL_BASE: Final[int] = 0x00000
PORTAL_STRIDE: Final[int] = 0x1000
PORTAL_COUNT_MAX: Final[int] = 4096


class Bar0:
    """BAR0 PF registers."""

    DEV_ID: Final[Reg] = Reg(
        'dev_id', 0x00000, (
            Field('magic', 0, 32, 'ro', 1397313366, "Magic 'SIOV' = 0x53494F56."),
        ),
        'Device identification (read only).',
    )
    VERSION: Final[Reg] = Reg(
        'version', 0x00004, (
            Field('minor', 0, 16, 'ro', 0, 'Minor.'),
            Field('major', 16, 16, 'ro', 1, 'Major.'),
        ),
        'Register map version (read only).',
    )
    NUM_ADI: Final[Reg] = Reg(
        'num_adi', 0x00008, (
            Field('count', 0, 16, 'ro', None, 'Count.'),
        ),
        'Number of ADIs implemented (synthesis parameter NumAdi).',
    )
    CAPS: Final[Reg] = Reg(
        'caps', 0x0000C, (
            Field('copy', 0, 1, 'ro', 1, 'COPY supported.'),
            Field('fill', 1, 1, 'ro', 1, 'FILL supported.'),
            Field('send', 2, 1, 'ro', 1, 'SEND supported (embedded switch).'),
            Field('ims', 3, 1, 'ro', 1, 'IMS supported.'),
            Field('log2_desc', 8, 4, 'ro', 5, 'log2 of the descriptor size in bytes.'),
            Field('log2_max_xfer', 16, 5, 'ro', 20, 'log2 of the largest transfer length in bytes.'),
            Field('log2_adi_stride', 24, 4, 'ro', 7, 'log2 of the ADI page stride in BAR0.'),
        ),
        'Capabilities (read only).',
    )
    PF_CTRL: Final[Reg] = Reg(
        'pf_ctrl', 0x00010, (
            Field('enable', 0, 1, 'rw', 0, 'Engine enable: the scheduler starts descriptor fetches only when set.'),
        ),
        'PF control.',
    )
    PF_STATUS: Final[Reg] = Reg(
        'pf_status', 0x00014, (
            Field('init_done', 0, 1, 'ro', None, 'RAM initialisation after reset finished; ADI pages are valid.'),
            Field('tp', 1, 1, 'ro', None, "Transactions pending: DMA reads are waiting for completions (the same level the config space's DevSta.TP reports)."),
            Field('cpl_timeout', 8, 1, 'rw1c', 0, 'Sticky, write 1 to clear: a DMA read completion timed out (dma_timeout).'),
            Field('unexp_cpl', 9, 1, 'rw1c', 0, 'Sticky, write 1 to clear: an unexpected completion (unknown or expired tag, or another Requester ID) was received and dropped.'),
        ),
        'PF status (read only).',
    )
    PF_INT_CAUSE: Final[Reg] = Reg(
        'pf_int_cause', 0x00018, (
            Field('adi_error', 0, 1, 'rw1c', 0, 'An ADI entered ERROR.'),
            Field('drain_done', 1, 1, 'rw1c', 0, 'An ADI finished DRAIN or QUIESCE.'),
        ),
        'PF interrupt cause (write 1 to clear). Each cause raises its MSI-X vector (pf_int_vec) when set and not masked in pf_int_mask.',
    )
    PF_INT_MASK: Final[Reg] = Reg(
        'pf_int_mask', 0x0001C, (
            Field('adi_error', 0, 1, 'rw', 0, 'Mask adi_error.'),
            Field('drain_done', 1, 1, 'rw', 0, 'Mask drain_done.'),
        ),
        'PF interrupt mask (1 = masked).',
    )
    PF_INT_VEC: Final[Reg] = Reg(
        'pf_int_vec', 0x00020, (
            Field('adi_error', 0, 3, 'rw', 0, 'Vector for adi_error.'),
            Field('drain_done', 8, 3, 'rw', 1, 'Vector for drain_done.'),
        ),
        'MSI-X vector used by each PF interrupt cause.',
    )
    LAST_ERR: Final[Reg] = Reg(
        'last_err', 0x00024, (
            Field('adi', 0, 16, 'ro', None, 'ADI number.'),
            Field('err', 16, 8, 'ro', None, 'Error reason.'),
        ),
        'Last ADI that entered ERROR (read only).',
    )
    LAST_DRAIN: Final[Reg] = Reg(
        'last_drain', 0x00028, (
            Field('adi', 0, 16, 'ro', None, 'ADI number.'),
        ),
        'Last ADI that finished DRAIN or QUIESCE (read only).',
    )
    DMA_TIMEOUT: Final[Reg] = Reg(
        'dma_timeout', 0x0002C, (
            Field('units', 0, 16, 'rw', 256, 'Timeout, 4096-cycle units.'),
        ),
        'DMA read completion timeout in units of 4096 clock cycles (0 acts as 1). The default 0x100 is 1 048 576 cycles = 4.2 ms at 250 MHz (PCIe range 50 us - 50 ms). A timed-out tag ends its request with DMA_TIMEOUT, sets pf_status.cpl_timeout and is quarantined for one more timeout before reuse.',
    )
    SCRATCH: Final[Reg] = Reg(
        'scratch', 0x00030, (
            Field('value', 0, 32, 'rw', 0, 'Any value.'),
        ),
        'Scratch register for software.',
    )
    MSIX_0_ADDR_LO: Final[Reg] = Reg(
        'msix_0_addr_lo', 0x02000, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, low 32 bits.',
    )
    MSIX_0_ADDR_HI: Final[Reg] = Reg(
        'msix_0_addr_hi', 0x02004, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, high 32 bits.',
    )
    MSIX_0_DATA: Final[Reg] = Reg(
        'msix_0_data', 0x02008, (
            Field('data', 0, 32, 'rw', 0, 'Data.'),
        ),
        'Message data.',
    )
    MSIX_0_CTRL: Final[Reg] = Reg(
        'msix_0_ctrl', 0x0200C, (
            Field('mask', 0, 1, 'rw', 1, 'Mask.'),
        ),
        'Vector control.',
    )
    MSIX_1_ADDR_LO: Final[Reg] = Reg(
        'msix_1_addr_lo', 0x02010, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, low 32 bits.',
    )
    MSIX_1_ADDR_HI: Final[Reg] = Reg(
        'msix_1_addr_hi', 0x02014, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, high 32 bits.',
    )
    MSIX_1_DATA: Final[Reg] = Reg(
        'msix_1_data', 0x02018, (
            Field('data', 0, 32, 'rw', 0, 'Data.'),
        ),
        'Message data.',
    )
    MSIX_1_CTRL: Final[Reg] = Reg(
        'msix_1_ctrl', 0x0201C, (
            Field('mask', 0, 1, 'rw', 1, 'Mask.'),
        ),
        'Vector control.',
    )
    MSIX_2_ADDR_LO: Final[Reg] = Reg(
        'msix_2_addr_lo', 0x02020, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, low 32 bits.',
    )
    MSIX_2_ADDR_HI: Final[Reg] = Reg(
        'msix_2_addr_hi', 0x02024, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, high 32 bits.',
    )
    MSIX_2_DATA: Final[Reg] = Reg(
        'msix_2_data', 0x02028, (
            Field('data', 0, 32, 'rw', 0, 'Data.'),
        ),
        'Message data.',
    )
    MSIX_2_CTRL: Final[Reg] = Reg(
        'msix_2_ctrl', 0x0202C, (
            Field('mask', 0, 1, 'rw', 1, 'Mask.'),
        ),
        'Vector control.',
    )
    MSIX_3_ADDR_LO: Final[Reg] = Reg(
        'msix_3_addr_lo', 0x02030, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, low 32 bits.',
    )
    MSIX_3_ADDR_HI: Final[Reg] = Reg(
        'msix_3_addr_hi', 0x02034, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, high 32 bits.',
    )
    MSIX_3_DATA: Final[Reg] = Reg(
        'msix_3_data', 0x02038, (
            Field('data', 0, 32, 'rw', 0, 'Data.'),
        ),
        'Message data.',
    )
    MSIX_3_CTRL: Final[Reg] = Reg(
        'msix_3_ctrl', 0x0203C, (
            Field('mask', 0, 1, 'rw', 1, 'Mask.'),
        ),
        'Vector control.',
    )
    MSIX_4_ADDR_LO: Final[Reg] = Reg(
        'msix_4_addr_lo', 0x02040, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, low 32 bits.',
    )
    MSIX_4_ADDR_HI: Final[Reg] = Reg(
        'msix_4_addr_hi', 0x02044, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, high 32 bits.',
    )
    MSIX_4_DATA: Final[Reg] = Reg(
        'msix_4_data', 0x02048, (
            Field('data', 0, 32, 'rw', 0, 'Data.'),
        ),
        'Message data.',
    )
    MSIX_4_CTRL: Final[Reg] = Reg(
        'msix_4_ctrl', 0x0204C, (
            Field('mask', 0, 1, 'rw', 1, 'Mask.'),
        ),
        'Vector control.',
    )
    MSIX_5_ADDR_LO: Final[Reg] = Reg(
        'msix_5_addr_lo', 0x02050, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, low 32 bits.',
    )
    MSIX_5_ADDR_HI: Final[Reg] = Reg(
        'msix_5_addr_hi', 0x02054, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, high 32 bits.',
    )
    MSIX_5_DATA: Final[Reg] = Reg(
        'msix_5_data', 0x02058, (
            Field('data', 0, 32, 'rw', 0, 'Data.'),
        ),
        'Message data.',
    )
    MSIX_5_CTRL: Final[Reg] = Reg(
        'msix_5_ctrl', 0x0205C, (
            Field('mask', 0, 1, 'rw', 1, 'Mask.'),
        ),
        'Vector control.',
    )
    MSIX_6_ADDR_LO: Final[Reg] = Reg(
        'msix_6_addr_lo', 0x02060, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, low 32 bits.',
    )
    MSIX_6_ADDR_HI: Final[Reg] = Reg(
        'msix_6_addr_hi', 0x02064, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, high 32 bits.',
    )
    MSIX_6_DATA: Final[Reg] = Reg(
        'msix_6_data', 0x02068, (
            Field('data', 0, 32, 'rw', 0, 'Data.'),
        ),
        'Message data.',
    )
    MSIX_6_CTRL: Final[Reg] = Reg(
        'msix_6_ctrl', 0x0206C, (
            Field('mask', 0, 1, 'rw', 1, 'Mask.'),
        ),
        'Vector control.',
    )
    MSIX_7_ADDR_LO: Final[Reg] = Reg(
        'msix_7_addr_lo', 0x02070, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, low 32 bits.',
    )
    MSIX_7_ADDR_HI: Final[Reg] = Reg(
        'msix_7_addr_hi', 0x02074, (
            Field('addr', 0, 32, 'rw', 0, 'Address.'),
        ),
        'Message address, high 32 bits.',
    )
    MSIX_7_DATA: Final[Reg] = Reg(
        'msix_7_data', 0x02078, (
            Field('data', 0, 32, 'rw', 0, 'Data.'),
        ),
        'Message data.',
    )
    MSIX_7_CTRL: Final[Reg] = Reg(
        'msix_7_ctrl', 0x0207C, (
            Field('mask', 0, 1, 'rw', 1, 'Mask.'),
        ),
        'Vector control.',
    )
    MSIX_PBA: Final[Reg] = Reg(
        'msix_pba', 0x03000, (
            Field('pending', 0, 8, 'ro', None, 'Pending bit of vector i: an event the vector could not deliver yet (MSI-X disabled, function or vector masked, Bus Master Enable clear), including a message the DMA engine dropped because Bus Master Enable was cleared after it was queued. Sent, and cleared, once deliverable.'),
        ),
        'MSI-X pending bit array (read only).',
    )
    MSIX_PBA_HI: Final[Reg] = Reg(
        'msix_pba_hi', 0x03004, (
            Field('rsvd', 0, 32, 'ro', 0, 'Reserved.'),
        ),
        'MSI-X pending bit array, upper half (reads 0).',
    )

    ALL: Final[tuple[Reg, ...]] = (DEV_ID, VERSION, NUM_ADI, CAPS, PF_CTRL, PF_STATUS, PF_INT_CAUSE, PF_INT_MASK, PF_INT_VEC, LAST_ERR, LAST_DRAIN, DMA_TIMEOUT, SCRATCH, MSIX_0_ADDR_LO, MSIX_0_ADDR_HI, MSIX_0_DATA, MSIX_0_CTRL, MSIX_1_ADDR_LO, MSIX_1_ADDR_HI, MSIX_1_DATA, MSIX_1_CTRL, MSIX_2_ADDR_LO, MSIX_2_ADDR_HI, MSIX_2_DATA, MSIX_2_CTRL, MSIX_3_ADDR_LO, MSIX_3_ADDR_HI, MSIX_3_DATA, MSIX_3_CTRL, MSIX_4_ADDR_LO, MSIX_4_ADDR_HI, MSIX_4_DATA, MSIX_4_CTRL, MSIX_5_ADDR_LO, MSIX_5_ADDR_HI, MSIX_5_DATA, MSIX_5_CTRL, MSIX_6_ADDR_LO, MSIX_6_ADDR_HI, MSIX_6_DATA, MSIX_6_CTRL, MSIX_7_ADDR_LO, MSIX_7_ADDR_HI, MSIX_7_DATA, MSIX_7_CTRL, MSIX_PBA, MSIX_PBA_HI,)


class SwitchFwd:
    """Embedded switch forwarding table (offsets relative to one page/entry)."""

    FWD: Final[Reg] = Reg(
        'fwd', 0x00000, (
            Field('adi', 0, 16, 'rw', 0, 'Destination ADI number.'),
            Field('valid', 31, 1, 'rw', 0, 'Entry valid.'),
        ),
        'Forwarding entry.',
    )

    ALL: Final[tuple[Reg, ...]] = (FWD,)


class AdiPage:
    """ADI configuration pages (offsets relative to one page/entry)."""

    RING_BASE_LO: Final[Reg] = Reg(
        'ring_base_lo', 0x00000, (
            Field('addr', 0, 32, 'rw', 0, 'Base address bits 31:0.'),
        ),
        'Submission ring base address, low 32 bits. Must be 32-byte aligned (bits 4:0 = 0), checked when the ADI is enabled (error BAD_RING_ALIGN).',
    )
    RING_BASE_HI: Final[Reg] = Reg(
        'ring_base_hi', 0x00004, (
            Field('addr', 0, 32, 'rw', 0, 'Base address bits 63:32.'),
        ),
        'Submission ring base address, high 32 bits.',
    )
    RING_SIZE: Final[Reg] = Reg(
        'ring_size', 0x00008, (
            Field('log2_entries', 0, 4, 'rw', 0, 'log2 of the number of ring entries (0..15).'),
        ),
        'Submission ring size. The ring holds 2^log2_entries descriptors of 32 bytes.',
    )
    CPL_BASE_LO: Final[Reg] = Reg(
        'cpl_base_lo', 0x0000C, (
            Field('addr', 0, 32, 'rw', 0, 'Base address bits 31:0.'),
        ),
        'Completion record ring base, low 32 bits. Record i (16 bytes) of submission slot i is written at base + 16*i. Must be 16-byte aligned.',
    )
    CPL_BASE_HI: Final[Reg] = Reg(
        'cpl_base_hi', 0x00010, (
            Field('addr', 0, 32, 'rw', 0, 'Base address bits 63:32.'),
        ),
        'Completion record ring base, high 32 bits.',
    )
    RX_BASE_LO: Final[Reg] = Reg(
        'rx_base_lo', 0x00014, (
            Field('addr', 0, 32, 'rw', 0, 'Base address bits 31:0.'),
        ),
        'Receive ring base for SEND, low 32 bits. Slot i is at base + i * 2^log2_slot_bytes.',
    )
    RX_BASE_HI: Final[Reg] = Reg(
        'rx_base_hi', 0x00018, (
            Field('addr', 0, 32, 'rw', 0, 'Base address bits 63:32.'),
        ),
        'Receive ring base for SEND, high 32 bits.',
    )
    RX_CFG: Final[Reg] = Reg(
        'rx_cfg', 0x0001C, (
            Field('log2_slots', 0, 4, 'rw', 0, 'log2 of the number of receive slots (0..15).'),
            Field('log2_slot_bytes', 8, 5, 'rw', 11, 'log2 of the slot size in bytes (6..16); a slot holds a 16-byte header and up to 2^n - 16 payload bytes.'),
        ),
        'Receive ring geometry.',
    )
    PASID: Final[Reg] = Reg(
        'pasid', 0x00020, (
            Field('pasid', 0, 20, 'rw', 0, 'PASID.'),
            Field('pmr', 30, 1, 'rw', 0, 'Privileged Mode Requested bit of the prefix.'),
            Field('valid', 31, 1, 'rw', 0, 'PASID valid: tag requests with the prefix.'),
        ),
        'PASID of this ADI. Every DMA request of the ADI carries the PASID prefix when valid is set and PASID Enable is set in the PASID capability. Writes are ignored unless the ADI is disabled.',
    )
    IMS_ADDR_LO: Final[Reg] = Reg(
        'ims_addr_lo', 0x00024, (
            Field('addr', 0, 32, 'rw', 0, 'Address bits 31:0 (bits 1:0 ignored).'),
        ),
        'IMS entry: message address, low 32 bits.',
    )
    IMS_ADDR_HI: Final[Reg] = Reg(
        'ims_addr_hi', 0x00028, (
            Field('addr', 0, 32, 'rw', 0, 'Address bits 63:32.'),
        ),
        'IMS entry: message address, high 32 bits.',
    )
    IMS_DATA: Final[Reg] = Reg(
        'ims_data', 0x0002C, (
            Field('data', 0, 32, 'rw', 0, 'Data written to the message address.'),
        ),
        'IMS entry: message data.',
    )
    IMS_CTRL: Final[Reg] = Reg(
        'ims_ctrl', 0x00030, (
            Field('mask', 0, 1, 'rw', 1, 'Mask (reset value 1 = masked).'),
            Field('pending', 1, 1, 'rw', 0, 'Pending. Set by the hardware (an interrupt event while masked, or a message of this entry that the DMA engine dropped because Bus Master Enable was cleared after it was queued; that one is resent once Bus Master Enable is set and the entry is unmasked), cleared when the message is sent. Software may only set it, by writing 1 while the ADI is DISABLED with nothing outstanding (migration load); other writes leave it unchanged.'),
        ),
        'IMS entry: vector control. While masked, an interrupt event sets pending instead of sending; clearing mask with pending set sends the message and clears pending.',
    )
    SW_PORT: Final[Reg] = Reg(
        'sw_port', 0x00034, (
            Field('group', 0, 12, 'rw', 0, 'Switch group (VLAN-like).'),
            Field('addr', 16, 12, 'rw', 0, "Switch address of this ADI's port, reported as the source in the receive slot header of its SENDs (the PF keeps it equal to the forwarding entry that points at this ADI)."),
            Field('send_en', 30, 1, 'rw', 0, 'This ADI may transmit SEND descriptors.'),
            Field('recv_en', 31, 1, 'rw', 0, 'This ADI may receive SENDs into its receive ring.'),
        ),
        'Embedded switch port of this ADI. A SEND from this ADI to switch address A is allowed only if forwarding entry A is valid, send_en is set here and the group of the destination ADI equals this group.',
    )
    CMD: Final[Reg] = Reg(
        'cmd', 0x00038, (
            Field('cmd', 0, 3, 'wo', 0, '1 = ENABLE (from DISABLED), 2 = DRAIN (stop fetching, let the descriptor in flight finish, then DISABLED and a drain-done interrupt), 3 = RESET (from DISABLED or ERROR: clear state, DISABLED), 4 = QUIESCE (as DRAIN, but an ERROR ADI stays in ERROR and a descriptor failing meanwhile leaves the ADI in ERROR; status.flush reports its interrupt message still queued), 5 = ABORT (as DRAIN, but the descriptor in flight stops at its next DMA request boundary and its completion record says ABORTED; on a DISABLED or ERROR ADI with nothing in flight it acts as DRAIN). Other values are ignored.'),
        ),
        'Command (write only, reads 0). Accepted in any state; see the ADI state machine.',
    )
    STATUS: Final[Reg] = Reg(
        'status', 0x0003C, (
            Field('state', 0, 2, 'rw', 0, '0 DISABLED, 1 ENABLED, 2 ERROR, 3 DRAINING (DRAIN, QUIESCE or ABORT in progress).'),
            Field('err', 8, 8, 'rw', 0, 'Error reason (see datasheet error codes), 0 = none.'),
            Field('busy', 16, 1, 'ro', 0, 'Requests of this ADI outstanding in the DMA engine: its descriptor in flight, or a SEND into its receive ring between slot grant and publish.'),
            Field('flush', 17, 1, 'ro', 0, 'An interrupt message of a finished DRAIN or QUIESCE (of any ADI) is still queued for the interrupt path, or a deferred IMS message is being resent, or a message dropped by the DMA engine (Bus Master Enable cleared) is being made pending. A quiesce is complete when state is DISABLED or ERROR and busy and flush are 0.'),
        ),
        'State and error reason. Read only, except while the ADI is DISABLED with nothing outstanding (migration load): a write with state 0 (DISABLED) or 2 (ERROR) sets state and err; writes with state 1 or 3, or in any other situation, are ignored.',
    )
    HEAD: Final[Reg] = Reg(
        'head', 0x00040, (
            Field('head', 0, 16, 'rw', 0, 'Head index.'),
        ),
        'Submission ring head: index of the next descriptor to fetch. Read only, except while the ADI is DISABLED with nothing outstanding (migration load; bits beyond the ring size are dropped).',
    )
    TAIL: Final[Reg] = Reg(
        'tail', 0x00044, (
            Field('tail', 0, 16, 'rw', 0, 'Tail index.'),
        ),
        'Submission ring tail: last doorbell value. Read only, except while the ADI is DISABLED with nothing outstanding (migration load; bits beyond the ring size are dropped).',
    )
    RX_IDX: Final[Reg] = Reg(
        'rx_idx', 0x00048, (
            Field('rx_head', 0, 16, 'rw', 0, 'Receive head (consumer, software).'),
            Field('rx_tail', 16, 16, 'rw', 0, 'Receive tail (producer, device).'),
        ),
        'Receive ring indices (the receiving guest moves rx head through its portal page). Read only here, except while the ADI is DISABLED with nothing outstanding (migration load; bits beyond the receive ring size are dropped).',
    )
    CNT_DESC: Final[Reg] = Reg(
        'cnt_desc', 0x0004C, (
            Field('count', 0, 32, 'rw', 0, 'Count.'),
        ),
        'Completed descriptors (wraps). Read only, except while the ADI is DISABLED with nothing outstanding (migration load).',
    )
    CNT_BYTES: Final[Reg] = Reg(
        'cnt_bytes', 0x00050, (
            Field('count', 0, 32, 'rw', 0, 'Count.'),
        ),
        'Bytes moved by completed descriptors (wraps). Read only, except while the ADI is DISABLED with nothing outstanding (migration load).',
    )
    ERR_INFO: Final[Reg] = Reg(
        'err_info', 0x00054, (
            Field('index', 0, 16, 'rw', 0, 'Ring index.'),
        ),
        'Error detail: ring index of the descriptor that caused the error. Read only, except while the ADI is DISABLED with nothing outstanding (migration load).',
    )

    ALL: Final[tuple[Reg, ...]] = (RING_BASE_LO, RING_BASE_HI, RING_SIZE, CPL_BASE_LO, CPL_BASE_HI, RX_BASE_LO, RX_BASE_HI, RX_CFG, PASID, IMS_ADDR_LO, IMS_ADDR_HI, IMS_DATA, IMS_CTRL, SW_PORT, CMD, STATUS, HEAD, TAIL, RX_IDX, CNT_DESC, CNT_BYTES, ERR_INFO,)


class PortalPage:
    """BAR2 portal page (offsets relative to one page/entry)."""

    DOORBELL: Final[Reg] = Reg(
        'doorbell', 0x00000, (
            Field('tail', 0, 16, 'wo', 0, 'Tail.'),
        ),
        'Doorbell: write the new submission ring tail (ring index). A value >= ring entries puts the ADI in ERROR (DOORBELL_RANGE). Ignored unless the ADI is ENABLED.',
    )
    RX_DOORBELL: Final[Reg] = Reg(
        'rx_doorbell', 0x00004, (
            Field('rx_head', 0, 16, 'wo', 0, 'Receive head.'),
        ),
        'Receive ring head: the guest writes the index of the next slot it will consume.',
    )
    STATUS: Final[Reg] = Reg(
        'status', 0x00008, (
            Field('state', 0, 2, 'ro', None, 'State.'),
            Field('err', 8, 8, 'ro', None, 'Error reason.'),
            Field('busy', 16, 1, 'ro', None, 'Busy.'),
        ),
        'State and error reason (read only; same layout as the BAR0 status register).',
    )
    HEAD: Final[Reg] = Reg(
        'head', 0x0000C, (
            Field('head', 0, 16, 'ro', None, 'Head.'),
        ),
        'Submission ring head (read only).',
    )
    RX_TAIL: Final[Reg] = Reg(
        'rx_tail', 0x00010, (
            Field('rx_tail', 0, 16, 'ro', None, 'Receive tail.'),
        ),
        'Receive ring tail (read only).',
    )

    ALL: Final[tuple[Reg, ...]] = (DOORBELL, RX_DOORBELL, STATUS, HEAD, RX_TAIL,)
